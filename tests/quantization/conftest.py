"""Fixtures shared by the quantization tests: real CIFAR-10 images, and comparing a QAT model with its int8 file."""

import os

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import QuantizeWrapper


def _probe(qat):
    """``qat`` with every quantized wrapper output as an output, so each tensor of the file can be compared."""
    tensors = [layer.output for layer in qat.layers if isinstance(layer, QuantizeWrapper) and layer.output_range()]
    return keras.Model(qat.inputs, tensors)


def _steps_apart(qat, path, images):
    """For every output of ``qat``: the largest difference from the matching output of the file, in grid steps."""
    file_outputs = tflite_export.predict(path, images)
    file_outputs = file_outputs if isinstance(file_outputs, list) else [file_outputs]
    qat.make_predict_function(force=True)  # traced afresh: a test may have switched part of the emulation off
    keras_outputs = qat.predict(images, verbose=0)
    keras_outputs = keras_outputs if isinstance(keras_outputs, list) else [keras_outputs]
    worst = []
    for keras_out in keras_outputs:
        step = (keras_out.max() - min(keras_out.min(), 0.0)) / 255.0
        candidates = [f for f in file_outputs if f.shape == keras_out.shape]
        # Whole steps: the two grids' float32 steps may differ in the last bit.
        worst.append(np.round(min(np.abs(f - keras_out).max() for f in candidates) / step, 2))
    return np.array(worst)


@pytest.fixture
def probe_model():
    """Returns ``probe(qat)``: a model whose outputs are all of ``qat``'s quantized tensors."""
    return _probe


@pytest.fixture
def steps_apart():
    """Returns ``steps_apart(qat, tflite_path, images)``: per output, the largest difference in grid steps."""
    return _steps_apart


_CIFAR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cifar10-15k.npz")


def _cifar(split, count):
    if not os.path.isfile(_CIFAR):
        pytest.fail(f"{_CIFAR} is missing; tests need the shared data beside the checkout")
    with np.load(_CIFAR) as data:
        return data[f"x_{split}"][:count].astype("float32"), data[f"y_{split}"][:count].reshape(-1).astype("int32")


@pytest.fixture(scope="session")
def cifar():
    """Returns ``cifar(split, count)``: the first ``count`` images of ``"train"`` or ``"test"`` (pixels 0-255,
    float32) and their labels, from the shared data."""
    return _cifar
