"""Rescaling and Normalization in QAT: EfficientNet's built-in preprocessing quantizes."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import quantize_model

L = keras.layers


@pytest.fixture
def pixels(cifar):
    return cifar("test", 128)[0]


def _preprocessing_model(pixels):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = L.Rescaling(1.0 / 255.0)(inputs)
    normalization = L.Normalization(axis=-1)
    normalization.adapt(pixels / 255.0)
    x = normalization(x)
    x = L.Conv2D(8, 3, activation="relu")(x)
    return keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)))


def test_rescaling_and_normalization_quantize_to_a_fully_integer_file_that_agrees(tmp_path, pixels):
    qat = quantize_model(_preprocessing_model(pixels))
    qat(pixels, training=True)  # sets every range
    path = tflite_export.convert(qat, str(tmp_path / "preprocessing.tflite"), mode="int8")
    ok, reasons = tflite_export.is_fully_integer(path)
    assert ok, reasons
    expected = qat.predict(pixels, verbose=0)
    assert expected.std(axis=0).max() > 1e-3  # outputs depend on the image
    actual = tflite_export.predict(path, pixels)
    assert np.abs(actual - expected).max() <= 2 * (expected.max() - expected.min()) / 255 + 1e-6


@pytest.mark.slow
def test_efficientnet_b0_quantizes_to_a_fully_integer_file(tmp_path, pixels):
    model = keras.applications.EfficientNetB0(input_shape=(32, 32, 3), weights=None, classes=10)
    qat = quantize_model(model)
    qat(pixels[:32], training=True)
    path = tflite_export.convert(qat, str(tmp_path / "efficientnet.tflite"), mode="int8")
    ok, reasons = tflite_export.is_fully_integer(path)
    assert ok, reasons


def test_per_channel_affine_layers_become_one_equivalent_depthwise_convolution():
    from kopt.quantization.transforms import affine_as_depthwise

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    normalization = L.Normalization(axis=-1, mean=[0.1, -0.2, 0.3], variance=[1.5, 0.5, 2.0])
    batch_norm = L.BatchNormalization()
    batch_norm.build((None, 4, 4, 3))
    batch_norm.set_weights([rng.uniform(0.5, 2.0, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2.0, 3)])
    for layer in (L.Rescaling(1 / 127.5, offset=-1.0), normalization, batch_norm):
        if not layer.built:
            layer.build((None, 4, 4, 3))
        depthwise = affine_as_depthwise(layer)
        assert isinstance(depthwise, L.DepthwiseConv2D) and depthwise.name == layer.name
        np.testing.assert_allclose(depthwise(x), layer(x, training=False), atol=1e-5)
    flat = L.Rescaling(2.0)
    flat.build((None, 5))
    assert affine_as_depthwise(flat) is None  # only 4-D channels-last tensors


def test_rescaling_with_an_offset_quantizes_to_a_fully_integer_file(tmp_path, pixels):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = L.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)  # MobileNetV3's built-in preprocessing
    x = L.Conv2D(8, 3, activation="relu")(x)
    model = keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)))
    qat = quantize_model(model)
    qat(pixels, training=True)
    path = tflite_export.convert(qat, str(tmp_path / "offset.tflite"), mode="int8")
    ok, reasons = tflite_export.is_fully_integer(path)
    assert ok, reasons
    expected = qat.predict(pixels, verbose=0)
    assert (
        np.abs(tflite_export.predict(path, pixels) - expected).max()
        <= 2 * (expected.max() - expected.min()) / 255 + 1e-6
    )
