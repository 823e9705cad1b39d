"""LayerNormalization in QAT: its mean rounded on the input's grid, as the int8 file computes it."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import quantize_model
from kopt.quantization.normalization import layer_norm_on_grid

L = keras.layers


@pytest.mark.parametrize("axis", [-1, (1, 2)])
def test_without_rounding_it_is_keras_layer_normalization(axis):
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype("float32")
    layer = L.LayerNormalization(axis=axis, epsilon=1e-3, gamma_initializer="random_normal", beta_initializer="ones")
    expected = layer(x)
    got = layer_norm_on_grid(x, layer.gamma, layer.beta, axis=axis, epsilon=1e-3, round_mean=lambda m: m)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_the_rounded_mean_is_used_for_the_variance_and_the_centre():
    x = np.array([[0.0, 1.0, 2.0, 4.0]], "float32")  # mean 1.75
    out = np.asarray(layer_norm_on_grid(x, None, None, axis=-1, epsilon=0.0, round_mean=lambda m: m * 0 + 2.0))
    centred = x - 2.0
    np.testing.assert_allclose(out, centred / np.sqrt(np.mean(centred**2)), atol=1e-6)


def test_qat_layer_norm_matches_its_int8_file(tmp_path):
    # The mean sits near zero and the features spread little: rounding the mean moves
    # the output by several steps of its grid, so only the on-grid model agrees.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 16))
    x = L.LayerNormalization(name="norm")(L.Dense(16, name="dense")(inputs))
    model = keras.Model(inputs, L.Dense(4, name="logits")(L.Flatten()(x)))
    data = (np.random.default_rng(1).normal(size=(256, 8, 16)) * 0.05).astype("float32")
    qat = quantize_model(model)
    qat.compile("adam", "mse")
    qat.fit(data, np.zeros((256, 4), "float32"), epochs=1, verbose=0)  # trains the ranges
    path = tflite_export.convert(qat, str(tmp_path / "norm.tflite"), mode="int8")
    got = tflite_export.predict(path, data)
    expected = qat.predict(data, verbose=0)
    output_step = np.ptp(expected) / 255
    assert np.abs(got - expected).max() <= 2.5 * output_step
