"""Quantization-aware Conv1D (and DepthwiseConv1D, SeparableConv1D) exports to int8: every Conv1D failed before.

Keras runs Conv1D as a 2-D convolution with its kernel expanded inside the op; quantized per
channel before that expansion, the kernel met a RESHAPE the converter cannot carry a per-axis
quantized tensor through ("'tfl.reshape' op requires 'output' type"). Keyword-spotting and
time-series models, which kopt's users ship to microcontrollers, are built of Conv1D.
"""

import doctest

import keras
import numpy as np
import pytest

import tflite_export
from kopt import quantization
from kopt.quantization import conv_lowering
from tflite_export.flatbuffer import TFLiteFlatbuffer

L = keras.layers
CASES = {
    "plain": lambda h: L.Conv1D(8, 3, name="conv")(h),
    "causal": lambda h: L.Conv1D(8, 3, padding="causal", activation="relu", name="conv")(h),
    "strided_same_no_bias": lambda h: L.Conv1D(8, 5, strides=2, padding="same", use_bias=False, name="conv")(h),
    "grouped": lambda h: L.Conv1D(6, 3, groups=2, activation="relu", name="conv")(h),
    "batchnorm_folded": lambda h: L.ReLU()(L.BatchNormalization()(L.Conv1D(8, 3, use_bias=False, name="conv")(h))),
    # Depthwise-separable time-series networks (activity recognition on IMU data).
    "depthwise": lambda h: L.DepthwiseConv1D(3, depth_multiplier=2, name="conv")(h),
    "depthwise_batchnorm_folded": lambda h: L.ReLU()(
        L.BatchNormalization()(L.DepthwiseConv1D(5, padding="same", use_bias=False, name="conv")(h))
    ),
    "separable": lambda h: L.SeparableConv1D(8, 3, strides=2, activation="relu", name="conv")(h),
}


def _assert_computes(path, qat, x):
    # The file's integers are the QAT model's; a rounding tie may fall the other way on a few
    # outputs, never further than one output step: over 24 seeded models (plain and dilated
    # Conv1D), 2 differed, each on 3 of 256 outputs (1.2%), by exactly one step.
    expected = keras.ops.convert_to_numpy(qat(x, training=False))
    difference = np.abs(tflite_export.predict(path, x) - expected)
    assert np.mean(difference <= 1e-5 * np.abs(expected).max()) >= 0.97, difference.max()
    assert difference.max() <= 1.5 * (expected.max() - expected.min()) / 255, difference.max()


def _model(make_conv):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((20, 6))
    hidden = L.GlobalAveragePooling1D()(make_conv(inputs))
    return keras.Model(inputs, L.Dense(4, name="head")(hidden))


@pytest.mark.parametrize("case", list(CASES))
def test_a_quantization_aware_conv1d_exports_a_fully_integer_file_that_computes_the_qat_model(case, tmp_path):
    x = np.random.default_rng(0).random((64, 20, 6), np.float32)
    qat = quantization.quantize_model(_model(CASES[case]))
    quantization.calibrate(qat, x)
    path = tflite_export.convert(qat, str(tmp_path / f"{case}.tflite"), mode="int8")
    integer, reasons = tflite_export.is_fully_integer(path)
    assert integer, reasons
    _assert_computes(path, qat, x)
    # The layer itself is untouched once the export is done: it still runs as Keras' own.
    conv = qat.get_layer("quant_conv").layer
    assert "call" not in vars(conv) and isinstance(conv, (L.Conv1D, L.DepthwiseConv1D))


def test_binary_conv1d_weights_export_with_two_values_per_channel(tmp_path):
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(1).random((32, 20, 6), np.float32)
    inputs = keras.Input((20, 6))
    hidden = L.Conv1D(8, 3, activation="relu", name="conv")(L.Conv1D(8, 3, name="first")(inputs))
    model = keras.Model(inputs, L.Dense(4, name="head")(L.GlobalAveragePooling1D()(hidden)))
    qat = quantization.quantize_model(model, scheme="binary")
    quantization.calibrate(qat, x)
    path = tflite_export.convert(qat, str(tmp_path / "binary.tflite"), mode="int8")
    _assert_computes(path, qat, x)
    flatbuffer = TFLiteFlatbuffer(path)
    kernels = [flatbuffer.values(op.inputs[1]) for op in flatbuffer.ops if op.name == "CONV_2D"]
    assert [kernel.shape for kernel in kernels] == [(8, 1, 3, 6), (8, 1, 3, 8)]  # (out, 1, width, in)
    # binary's first layer stays 8-bit; the second holds two codes per output channel, the int8 ends.
    assert max(len(np.unique(channel)) for channel in kernels[0]) > 2
    assert all(set(np.unique(channel)) <= {-127, 127} for channel in kernels[1]), kernels[1]


DILATED = {
    "conv1d_same": ((20, 6), lambda h: L.Conv1D(8, 3, padding="same", dilation_rate=2, name="conv")(h)),
    "conv1d_causal_relu": (
        (20, 6),
        lambda h: L.Conv1D(8, 3, padding="causal", dilation_rate=4, activation="relu", name="conv")(h),
    ),
    "conv2d_same_relu": (
        (12, 12, 3),
        lambda h: L.Conv2D(8, 3, padding="same", dilation_rate=2, activation="relu", name="conv")(h),
    ),
    "conv2d_valid_no_bias": (
        (13, 11, 3),
        lambda h: L.Conv2D(8, 3, dilation_rate=(2, 3), use_bias=False, name="conv")(h),
    ),
    "depthwise_same": ((12, 12, 4), lambda h: L.DepthwiseConv2D(3, padding="same", dilation_rate=2, name="conv")(h)),
    "depthwise1d_same": ((20, 4), lambda h: L.DepthwiseConv1D(3, padding="same", dilation_rate=2, name="conv")(h)),
    "separable_relu": (
        (12, 12, 3),
        lambda h: L.SeparableConv2D(8, 3, padding="same", dilation_rate=2, activation="relu", name="conv")(h),
    ),
    "conv2d_swish": (  # an activation TFLite runs as ops of its own, quantized inside the rearrangement
        (12, 12, 3),
        lambda h: L.Conv2D(8, 3, padding="same", dilation_rate=2, activation="swish", name="conv")(h),
    ),
    "conv2d_batchnorm_folded": (
        (12, 12, 3),
        lambda h: L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", dilation_rate=2, name="conv")(h))),
    ),
}


@pytest.mark.parametrize("case", list(DILATED))
def test_a_dilated_convolution_exports_fully_integer_and_computes_the_qat_model(case, tmp_path):
    # TensorFlow writes a dilated convolution as SpaceToBatch, an undilated convolution and BatchToSpace
    # with the bias and activation after it; the convolution then stayed float in the file. Lowered, the
    # layer's output is quantized before the BatchToSpace and every op is integer.
    shape, make = DILATED[case]
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape)
    hidden = make(inputs)
    pool = L.GlobalAveragePooling1D() if len(shape) == 2 else L.GlobalAveragePooling2D()
    model = keras.Model(inputs, L.Dense(4, name="head")(pool(hidden)))
    x = np.random.default_rng(2).random((48, *shape), np.float32)
    qat = quantization.quantize_model(model)
    quantization.calibrate(qat, x)
    path = tflite_export.convert(qat, str(tmp_path / f"{case}.tflite"), mode="int8")
    integer, reasons = tflite_export.is_fully_integer(path)
    assert integer, reasons
    ops = tflite_export.inspect(path)["op_counts"]
    assert ops.get("SPACE_TO_BATCH_ND") == 1 and ops.get("BATCH_TO_SPACE_ND") == 1, ops
    _assert_computes(path, qat, x)
    assert "call" not in vars(qat.get_layer("quant_conv").layer)


def test_the_module_example_runs():
    assert doctest.testmod(conv_lowering).failed == 0
