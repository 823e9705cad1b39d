"""SeparableConv2D under QAT: split as the file runs it, so the tensor between is trained int8."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import QuantizeWrapper
from kopt.quantization import quantize_model
from kopt.quantization import strip_quantization
from kopt.quantization.splits import split_separable
from kopt.testing import run_model_saving_test

L = keras.layers


def _separable_net():
    inputs = keras.Input((32, 32, 3))
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.SeparableConv2D(24, 3, padding="same", depth_multiplier=2, use_bias=False, name="sep_bn")(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.SeparableConv2D(32, 3, strides=2, activation="relu", dilation_rate=1, name="sep_relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10)(x))


@pytest.mark.parametrize(
    "settings",
    [
        dict(padding="same", depth_multiplier=1),
        dict(padding="valid", strides=2, depth_multiplier=3, use_bias=False),
        dict(padding="same", dilation_rate=2, activation="relu6"),
    ],
)
def test_the_split_computes_the_separable_layer(settings):
    separable = L.SeparableConv2D(5, 3, **settings)
    images = np.random.default_rng(0).normal(size=(2, 9, 9, 4)).astype("float32")
    expected = separable(images)
    depthwise, pointwise = split_separable(separable)
    np.testing.assert_allclose(pointwise(depthwise(images)), expected, atol=1e-5)
    assert pointwise.name == separable.name and depthwise.name == f"{separable.name}_depthwise"
    assert split_separable(L.Conv2D(2, 3)) is None


def test_qat_trains_a_separable_network_and_its_int8_file_agrees(tmp_path, cifar):
    keras.utils.set_random_seed(0)
    images, labels = cifar("train", 1500)
    images, test_images, labels = images[:1024] / 255.0, images[1024:] / 255.0, labels[:1024]
    model = _separable_net()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, batch_size=64, epochs=2, verbose=0)
    qat = quantize_model(model)
    inner = [type(layer.layer).__name__ for layer in qat.layers if isinstance(layer, QuantizeWrapper)]
    assert "SeparableConv2D" not in inner and inner.count("DepthwiseConv2D") == 2
    # The BatchNormalization after the pointwise half folds into it.
    assert "sep_bn" in {layer.layer.name for layer in qat.layers if isinstance(layer, QuantizeWrapper)}
    qat.compile(keras.optimizers.Adam(1e-4), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(images, labels, batch_size=64, epochs=1, verbose=0)
    run_model_saving_test(qat, images[:16])
    path = tflite_export.convert(qat, str(tmp_path / "sep.tflite"), mode="int8")
    integer, reasons = tflite_export.is_fully_integer(tflite_export.inspect(path))
    assert integer, reasons
    agreement = np.mean(
        np.argmax(tflite_export.predict(path, test_images), -1) == np.argmax(qat.predict(test_images, verbose=0), -1)
    )
    assert agreement >= 0.98, agreement
    stripped = strip_quantization(qat)
    assert [type(layer).__name__ for layer in stripped.layers].count("DepthwiseConv2D") == 2


def test_a_merge_of_four_4d_tensors_is_not_mistaken_for_an_affine_layer():
    # NASNet concatenates four branches: the build shape is four shapes, not one 4-D shape.
    from kopt.quantization.transforms import affine_as_depthwise

    inputs = [keras.Input((4, 4, 2)) for _ in range(4)]
    concat = L.Concatenate()
    keras.Model(inputs, concat(inputs))
    assert affine_as_depthwise(concat) is None
    qat = quantize_model(keras.Model(inputs, L.Conv2D(2, 1)(concat(inputs))))
    assert any(isinstance(layer, QuantizeWrapper) and isinstance(layer.layer, L.Concatenate) for layer in qat.layers)


def test_a_separable_conv1d_splits_into_a_depthwise_and_a_pointwise_conv1d():
    separable = L.SeparableConv1D(5, 3, padding="same", depth_multiplier=2, activation="relu", name="sep")
    x = np.random.default_rng(1).random((2, 9, 3)).astype("float32")
    expected = separable(x)
    depthwise, pointwise = split_separable(separable)
    assert isinstance(depthwise, L.DepthwiseConv1D) and isinstance(pointwise, L.Conv1D)
    np.testing.assert_allclose(pointwise(depthwise(x)), expected, atol=1e-5)
