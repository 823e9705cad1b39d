"""``preprocess_input`` written into a model as keras.ops: QAT quantizes it as the file runs it."""

import os

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import calibrate
from kopt.quantization import input_ops
from kopt.quantization import quantize_model

L = keras.layers
CIFAR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cifar10-15k.npz")


def _pixels(count=64):
    with np.load(CIFAR) as data:
        return data["x_test"][:count].astype("float32")  # 0-255, as preprocess_input expects


def _affine(qat):
    """The per-channel affine layers (a Rescaling is quantized as a 1x1 depthwise convolution) of a QAT model."""
    return [layer.layer for layer in qat.layers if isinstance(getattr(layer, "layer", None), L.DepthwiseConv2D)]


def _model(module):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = getattr(keras.applications, module).preprocess_input(inputs)
    x = L.Conv2D(8, 3, strides=2, use_bias=False, name="conv")(x)
    x = L.ReLU()(L.BatchNormalization(name="bn")(x))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10, name="logits")(x), name=f"{module}_model")


@pytest.mark.parametrize(
    "module, front_ops",
    [
        ("mobilenet_v2", ["DEPTHWISE_CONV_2D"]),  # x / 127.5 - 1: one Rescaling, rounded once
        ("densenet", ["DEPTHWISE_CONV_2D"]),  # x / 255, - mean, / std: one Rescaling
        ("resnet50", ["STRIDED_SLICE", "STRIDED_SLICE", "STRIDED_SLICE", "PACK", "DEPTHWISE_CONV_2D"]),  # BGR, - mean
    ],
)
def test_preprocessing_operations_become_one_rescaling_and_the_file_agrees(tmp_path, module, front_ops):
    model, pixels = _model(module), _pixels()
    qat = quantize_model(model)
    assert len(_affine(qat)) == 1, [layer.name for layer in qat.layers]  # a Rescaling, run as a 1x1 depthwise
    # The QAT model computes the float model's function, up to its grids.
    calibrate(qat, pixels)
    float_logits, qat_logits = model.predict(pixels, verbose=0), qat.predict(pixels, verbose=0)
    assert np.abs(float_logits - qat_logits).max() < 0.1 * np.abs(float_logits).max()
    path = tflite_export.convert(qat, str(tmp_path / f"{module}.tflite"), mode="int8")
    assert tflite_export.is_fully_integer(path)[0]
    ops = [op["op"] for op in tflite_export.inspect(path)["ops"]]
    assert ops[1 : 1 + len(front_ops)] == front_ops and ops[1 + len(front_ops)] == "CONV_2D", ops
    result = tflite_export.verify(path, qat, (pixels, np.zeros(len(pixels), "int64")))
    # Before, the converter rounded after the division and again after the subtraction: 0.38 on an untrained
    # MobileNetV2 behind "tf" preprocessing, where a Rescaling layer gave 1.0.
    assert result["agreement"] == 1.0 and result["max_abs_diff"] < 1e-5, result


def test_operations_past_the_first_layer_are_left_as_they_are():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 1, name="conv")(inputs)
    x = keras.ops.relu6(x + 3.0) / 6.0  # hard sigmoid, as MobileNetV3 writes it
    model = keras.Model(inputs, L.Dense(2)(L.Flatten()(x)))
    qat = quantize_model(model)
    assert not _affine(qat)
    assert {"Add", "TrueDivide"} <= {type(op).__name__ for op in qat.operations}


@pytest.mark.parametrize(
    "build, kept",
    [
        (lambda x: x / keras.ops.ones((8, 1, 3)), True),  # a constant that varies along another axis
        (lambda x: x * x, True),  # no constant
        (lambda x: 2.0 - x, False),  # c - x is a Rescaling too: scale -1, offset c
    ],
)
def test_only_per_channel_affine_maps_are_replaced(build, kept):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, L.Dense(2)(L.Flatten()(build(inputs))))
    qat = quantize_model(model)
    replaced = _affine(qat)
    assert (not replaced) == kept
    if replaced:
        kernel, bias = replaced[0].get_weights()
        assert np.all(kernel == -1.0) and np.all(bias == 2.0)


def test_the_module_example_runs():
    import doctest

    assert doctest.testmod(input_ops).failed == 0
