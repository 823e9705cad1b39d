"""kopt.quantization.wrapper: QuantizeWrapper and QuantizeLayer."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt.quantization import quantize_model
from kopt.quantization.fake_quant import fake_quant
from kopt.quantization.quantize_config import DefaultQuantizeConfig
from kopt.quantization.quantize_config import NoOpQuantizeConfig
from kopt.quantization.quantizers import LastValueQuantizer
from kopt.quantization.quantizers import MovingAverageQuantizer
from kopt.quantization.wrapper import QuantizeLayer
from kopt.quantization.wrapper import QuantizeWrapper
from kopt.testing import run_layer_test
from kopt.testing import run_model_saving_test
from kopt.testing import run_serialization_test
from tflite_export.cloning import copy_layer


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _config(per_axis=False):
    return DefaultQuantizeConfig(
        ["kernel"],
        LastValueQuantizer(per_axis=per_axis, symmetric=True, narrow_range=True),
        ["activation"],
        MovingAverageQuantizer(),
    )


def _ranges(layer):
    return {w.path: np.array(_numpy(w)) for w in layer.non_trainable_weights}


def test_layer_test_dense_conv_and_quantize_layer():
    data = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    run_layer_test(
        lambda **kw: QuantizeWrapper(keras.layers.Dense(4, activation="relu"), **kw),
        {"quantize_config": _config()},
        data,
        expected_output_shape=(4, 4),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=4,
    )
    images = np.random.default_rng(1).normal(size=(2, 6, 6, 3)).astype("float32")
    run_layer_test(
        lambda **kw: QuantizeWrapper(keras.layers.Conv2D(4, 3), **kw),
        {"quantize_config": _config(per_axis=True)},
        images,
        expected_output_shape=(2, 4, 4, 4),
        expected_num_non_trainable_weights=4,
    )
    run_layer_test(
        QuantizeLayer,
        {"quantizer": MovingAverageQuantizer(num_bits=16, symmetric=True, narrow_range=True)},
        data,
        expected_output_shape=(4, 6),
        expected_num_non_trainable_weights=2,
    )


def test_serialization_keeps_layer_and_config():
    wrapper = QuantizeWrapper(keras.layers.Dense(3, activation="relu", name="fc"), _config(), name="q_fc")
    restored = run_serialization_test(wrapper)
    assert restored.name == "q_fc" and restored.layer.name == "fc"
    assert restored.quantize_config.get_config() == wrapper.quantize_config.get_config()
    layer = QuantizeLayer(MovingAverageQuantizer(ema_decay=0.9), name="quantize_input")
    assert run_serialization_test(layer).quantizer == MovingAverageQuantizer(ema_decay=0.9)
    assert QuantizeLayer().quantizer == MovingAverageQuantizer()


def test_outputs_are_the_layer_with_quantized_weights_then_quantized_activation():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 5)).astype("float32")
    wrapper = QuantizeWrapper(keras.layers.Dense(3, activation="relu"), _config())
    wrapper(x, training=True)
    outputs = _numpy(wrapper(x, training=False))
    quantized_kernel, bias = wrapper.quantized_weights()
    assert len(np.unique(quantized_kernel)) <= 255
    scale = np.abs(_numpy(wrapper.layer.kernel)).max() / 127
    np.testing.assert_allclose(quantized_kernel / scale, np.round(quantized_kernel / scale), atol=1e-3)
    np.testing.assert_array_equal(bias, _numpy(wrapper.layer.bias))
    reference = copy_layer(wrapper.layer, weights=[quantized_kernel, bias])
    ranges = _ranges(wrapper)
    low, high = ranges[f"{wrapper.name}/activation_output_min"], ranges[f"{wrapper.name}/activation_output_max"]
    np.testing.assert_allclose(outputs, _numpy(fake_quant(reference(x), low, high)), atol=1e-6)
    # And it is not the float layer.
    assert not np.allclose(outputs, _numpy(wrapper.layer(x)), atol=1e-6)


def test_gradient_reaches_the_float_kernel_straight_through():
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=(8, 4)).astype("float32"))
    wrapper = QuantizeWrapper(keras.layers.Dense(2), _config())
    wrapper(x, training=True)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(wrapper(x, training=True) ** 2)
    gradient = tape.gradient(loss, wrapper.layer.kernel.value)
    quantized = tf.constant(wrapper.quantized_weights()[0])
    with tf.GradientTape() as tape:
        tape.watch(quantized)
        low, high = (wrapper.non_trainable_weights[i].value for i in (2, 3))
        y = fake_quant(tf.matmul(x, quantized) + wrapper.layer.bias.value, low, high)
        reference_loss = tf.reduce_sum(y**2)
    np.testing.assert_allclose(gradient.numpy(), tape.gradient(reference_loss, quantized).numpy(), rtol=1e-5, atol=1e-6)


def test_the_wrapped_layer_is_left_unchanged():
    dense = keras.layers.Dense(3, activation="sigmoid")
    wrapper = QuantizeWrapper(dense, _config())
    before = dense.get_config()
    wrapper(np.ones((2, 4), "float32"), training=True)
    assert dense.get_config() == before
    assert dense.activation is keras.activations.sigmoid


def test_batch_normalization_inside_a_wrapper_updates_its_statistics():
    config = DefaultQuantizeConfig(activation_quantizer=MovingAverageQuantizer(), quantize_output=True)
    inputs = keras.Input((3,))
    wrapper = QuantizeWrapper(keras.layers.BatchNormalization(momentum=0.5), config)
    model = keras.Model(inputs, wrapper(inputs))
    model.compile("sgd", "mse")
    x = np.random.default_rng(4).normal(loc=2.0, size=(32, 3)).astype("float32")
    model.fit(x, x, batch_size=32, verbose=0)
    np.testing.assert_allclose(_numpy(wrapper.layer.moving_mean), 0.5 * x.mean(axis=0), rtol=1e-4)
    ranges = _ranges(wrapper)
    assert ranges[f"{wrapper.name}/output_0_max"] > ranges[f"{wrapper.name}/output_0_min"]


def test_losses_of_the_wrapped_layer_reach_the_model():
    dense = keras.layers.Dense(2, activity_regularizer="l2", kernel_regularizer="l1")
    wrapper = QuantizeWrapper(dense, _config())
    wrapper(np.ones((2, 3), "float32"), training=True)
    assert len(wrapper.losses) == 2


def test_no_op_config_runs_the_layer_in_float():
    x = np.random.default_rng(5).normal(size=(4, 3)).astype("float32")
    wrapper = QuantizeWrapper(keras.layers.Dense(2), NoOpQuantizeConfig())
    np.testing.assert_array_equal(_numpy(wrapper(x)), _numpy(wrapper.layer(x)))
    assert wrapper.non_trainable_weights == []


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: QuantizeWrapper("dense", _config()), "wraps a keras layer"),
        (lambda: QuantizeWrapper(keras.Sequential([keras.layers.Dense(1)]), _config()), "not models"),
        (lambda: QuantizeWrapper(QuantizeWrapper(keras.layers.Dense(1), _config()), _config()), "already wrapped"),
        (lambda: QuantizeWrapper(keras.layers.Dense(1, name="fc"), MovingAverageQuantizer()), "layer 'fc' must be"),
        (lambda: QuantizeLayer("moving_average"), "quantizer='moving_average'"),
    ],
)
def test_arguments_are_validated(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def _trained_qat_model():
    keras.utils.set_random_seed(6)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(4, 3, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    qat = quantize_model(model)
    qat.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(64, 6, 6, 2)).astype("float32"), rng.integers(0, 3, 64)
    qat.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return qat, x, y


def test_keras_save_and_load_reproduces_outputs_and_ranges_exactly():
    qat, x, _ = _trained_qat_model()
    loaded = run_model_saving_test(qat, x, atol=0.0, rtol=0.0)
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in qat.layers]
    for original, restored in zip(qat.layers, loaded.layers):
        for a, b in zip(_ranges(original).values(), _ranges(restored).values()):
            np.testing.assert_array_equal(a, b)


def test_a_loaded_model_continues_training_from_its_saved_ranges(tmp_path):
    qat, x, y = _trained_qat_model()
    path = os.path.join(tmp_path, "qat.keras")
    qat.save(path)
    loaded = keras.models.load_model(path)
    quantize = loaded.layers[1]
    assert isinstance(quantize, QuantizeLayer)
    saved_low, saved_high = (float(_numpy(w)) for w in quantize.weights)
    assert saved_high > saved_low  # trained, so not the "unseen" empty range
    batch = np.full((16, 6, 6, 2), 0.25, "float32")
    batch[0, 0, 0, 0], batch[0, 0, 0, 1] = -5.0, 7.0
    loaded.fit(batch, y[:16], batch_size=16, epochs=1, verbose=0)
    low, high = (float(_numpy(w)) for w in quantize.weights)
    # EMA from the saved range, not a reset (a reset would give -5 and 7).
    np.testing.assert_allclose(low, 0.999 * saved_low + 0.001 * -5.0, rtol=1e-5)
    np.testing.assert_allclose(high, 0.999 * saved_high + 0.001 * 7.0, rtol=1e-5)
    # The same step on the original model gives the same ranges and weights.
    qat.fit(batch, y[:16], batch_size=16, epochs=1, verbose=0)
    for a, b in zip(qat.weights, loaded.weights):
        np.testing.assert_allclose(_numpy(a), _numpy(b), rtol=1e-6, atol=1e-7, err_msg=a.path)
