"""Quantization-aware Conv1D exports to int8: every Conv1D failed at the converter before.

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
from kopt.quantization import conv1d_lowering
from tflite_export.flatbuffer import TFLiteFlatbuffer

L = keras.layers
CASES = {
    "plain": lambda h: L.Conv1D(8, 3, name="conv")(h),
    "causal": lambda h: L.Conv1D(8, 3, padding="causal", activation="relu", name="conv")(h),
    "strided_same_no_bias": lambda h: L.Conv1D(8, 5, strides=2, padding="same", use_bias=False, name="conv")(h),
    "grouped": lambda h: L.Conv1D(6, 3, groups=2, activation="relu", name="conv")(h),
    "batchnorm_folded": lambda h: L.ReLU()(L.BatchNormalization()(L.Conv1D(8, 3, use_bias=False, name="conv")(h))),
}


def _assert_computes(path, qat, x):
    # The file's integers are the QAT model's; a rounding tie may fall the other way on one output
    # in a few hundred (seen once in about 30 random models), never further than one output step.
    expected = keras.ops.convert_to_numpy(qat(x, training=False))
    difference = np.abs(tflite_export.predict(path, x) - expected)
    assert np.mean(difference <= 1e-5 * np.abs(expected).max()) >= 0.99, difference.max()
    assert difference.max() <= 1.5 * (expected.max() - expected.min()) / 255, difference.max()


def _model(make_conv):
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
    # The layer itself is untouched once the export is done: it still runs as Keras' Conv1D.
    conv = qat.get_layer("quant_conv").layer
    assert "call" not in vars(conv) and isinstance(conv, L.Conv1D)


def test_binary_conv1d_weights_export_with_two_values_per_channel(tmp_path):
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


def test_a_dilated_conv1d_converts_and_agrees_with_its_op_in_float(tmp_path):
    # TensorFlow writes a dilated convolution as SpaceToBatch, CONV_2D, BatchToSpace, and the converter
    # then leaves that CONV_2D in float, as it does for a dilated Conv2D: the file still computes the model.
    x = np.random.default_rng(2).random((32, 20, 6), np.float32)
    qat = quantization.quantize_model(_model(lambda h: L.Conv1D(8, 3, dilation_rate=2, name="conv")(h)))
    quantization.calibrate(qat, x)
    path = tflite_export.convert(qat, str(tmp_path / "dilated.tflite"), mode="int8")
    _assert_computes(path, qat, x)


def test_the_module_example_runs():
    assert doctest.testmod(conv1d_lowering).failed == 0
