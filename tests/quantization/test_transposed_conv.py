"""Conv2DTranspose in QAT: BatchNormalization folded, per-tensor weights, an int8 TRANSPOSE_CONV."""

import keras
import numpy as np

import tflite_export
from kopt.quantization import quantize_model
from kopt.quantization.transforms import folded_layer

L = keras.layers


def _decoder():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 4))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = L.Conv2DTranspose(6, 3, strides=2, padding="same", name="up")(x)
    x = L.BatchNormalization(name="up_bn")(x)
    x = L.ReLU()(x)
    return keras.Model(inputs, L.Conv2D(3, 1)(x), name="decoder")


def test_folding_a_transposed_convolution_scales_its_output_channels():
    model = _decoder()
    batch_norm = model.get_layer("up_bn")
    rng = np.random.default_rng(0)
    batch_norm.set_weights([rng.uniform(0.5, 2.0, 6), rng.normal(size=6), rng.normal(size=6), rng.uniform(0.5, 2.0, 6)])
    features = rng.normal(size=(2, 8, 8, 8)).astype("float32")
    expected = batch_norm(model.get_layer("up")(features), training=False)
    folded = folded_layer(model.get_layer("up"), batch_norm)
    np.testing.assert_allclose(folded(features), expected, atol=1e-4)


def test_transposed_convolution_quantizes_to_a_fully_integer_file(tmp_path):
    inputs = np.random.default_rng(1).normal(size=(64, 8, 8, 4)).astype("float32")
    qat = quantize_model(_decoder())
    assert "up_bn" not in [layer.name for layer in qat.layers if layer.weights]  # folded into "up"
    qat.compile(keras.optimizers.Adam(1e-3), "mse")
    qat.fit(inputs, np.zeros((64, 16, 16, 3), "float32"), batch_size=16, verbose=0)
    path = tflite_export.convert(qat, str(tmp_path / "decoder.tflite"), mode="int8")
    report = tflite_export.inspect(path)
    ok, reasons = tflite_export.is_fully_integer(report)
    assert ok, reasons
    assert report["op_counts"]["TRANSPOSE_CONV"] == 1
    expected = qat.predict(inputs, verbose=0)
    step = (expected.max() - expected.min()) / 255
    assert np.abs(tflite_export.predict(path, inputs) - expected).max() <= 3 * step
