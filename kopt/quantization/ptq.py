"""Post-training quantization: a quantized ``.tflite`` file without retraining.

For users who cannot fine-tune, these helpers name the usual choices and pass them
to ``tflite_export.convert``, which writes the file atomically (the first four live
in :mod:`tflite_export.ptq` and are re-exported here):

* :func:`quantize_dynamic_range`: int8 weights, float activations; no data needed.
  About 4x smaller, often faster on CPU.
* :func:`quantize_float16`: float16 weights; no data needed. 2x smaller, and
  GPU delegates run it natively.
* :func:`quantize_full_integer`: int8 weights and activations calibrated on a
  representative dataset; int8 or uint8 model inputs/outputs for integer-only
  accelerators (Edge TPU, microcontrollers).
* :func:`quantize_int16x8`: int16 activations with int8 weights, for models whose
  activations need more resolution than int8.
* :func:`quantize_calibrated`: kopt's own full-integer PTQ: the model is made
  quantization-aware (:func:`kopt.quantization.quantize_model`), its activation
  ranges are calibrated on typical inputs without training (:func:`calibrate`),
  and the file is written from those ranges. It quantizes exactly what QAT
  would, so the parts TFLite has no matching int8 kernel for (layer
  normalization after its mean, attention scores, a recurrent loop) stay float
  instead of being forced to int8, which keeps transformer and LSTM files close
  to the float model.

Quantization-aware training (:func:`kopt.quantization.quantize_model`) usually
loses less accuracy than full-integer PTQ on small models.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np

import tflite_export
from kopt.quantization.fake_quant import calibrating
from tflite_export.ptq import quantize_dynamic_range
from tflite_export.ptq import quantize_float16
from tflite_export.ptq import quantize_full_integer
from tflite_export.ptq import quantize_int16x8

if TYPE_CHECKING:
    import tensorflow as tf

    from kopt.quantization.schemes import QuantizeScheme

__all__ = [
    "calibrate", "quantize_calibrated", "quantize_dynamic_range", "quantize_float16", "quantize_full_integer",
    "quantize_int16x8",
]  # fmt: skip


def calibrate(
    qat_model: keras.Model,
    representative_dataset: np.ndarray | list[np.ndarray] | dict[str, np.ndarray] | tf.data.Dataset,
    *,
    batch_size: int = 32,
    max_examples: int = 1024,
) -> keras.Model:
    """Sets a quantization-aware model's activation ranges from typical inputs, without training.

    The model runs in inference (no dropout, weights unchanged) on up to
    ``max_examples`` inputs; every activation range becomes the widest range
    seen, as a PTQ calibrator sets it.

    Args:
        qat_model: A model from :func:`kopt.quantization.quantize_model`.
        representative_dataset: A NumPy array of inputs, a list or dict of arrays
            for several inputs, or a ``tf.data.Dataset`` of input batches or
            ``(inputs, labels)``.
        batch_size: Examples per call for array inputs.
        max_examples: Calibrate on at most this many examples.

    Returns:
        ``qat_model``, calibrated in place.

    Example:

    >>> import keras, numpy as np
    >>> from kopt.quantization import quantize_model
    >>> qat = quantize_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    >>> _ = calibrate(qat, np.full((8, 4), 3.0, "float32"))
    >>> float(qat.layers[1]._ranges["max"].numpy())  # the input QuantizeLayer
    3.0
    """
    if not isinstance(qat_model, keras.Model):
        raise ValueError(f"qat_model must be a keras.Model. Received: qat_model of type {type(qat_model).__name__}")
    for name, value in (("batch_size", batch_size), ("max_examples", max_examples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int. Received: {name}={value!r}")
    if representative_dataset is None:
        raise ValueError(
            "calibrate needs representative_dataset (typical inputs). Received: representative_dataset=None"
        )
    seen = 0
    with calibrating():
        for batch in _batches(representative_dataset, batch_size):
            qat_model(batch, training=False)
            seen += len(keras.tree.flatten(batch)[0])
            if seen >= max_examples:
                break
    if seen == 0:
        raise ValueError("representative_dataset gave no examples to calibrate on.")
    return qat_model


def quantize_calibrated(
    model: keras.Model | str | os.PathLike,
    output_path: str | os.PathLike,
    representative_dataset: np.ndarray | list[np.ndarray] | dict[str, np.ndarray] | tf.data.Dataset,
    *,
    scheme: QuantizeScheme | str | None = None,
    max_examples: int = 1024,
    float_layers: Sequence[str] = (),
) -> str:
    """Writes a full-integer file from kopt's own calibration (see the module docstring).

    Args:
        model: A float ``keras.Model`` or a ``.keras`` path.
        output_path: Destination ending in ``.tflite``.
        representative_dataset: Typical inputs, as for :func:`calibrate`.
        scheme: The quantization scheme (default 8-bit).
        max_examples: Calibrate on at most this many examples.
        float_layers: Names of layers left in float, as for
            :func:`kopt.quantization.quantize_model`; the file is then not fully
            integer, and the converter does not calibrate (it would quantize them).

    Returns:
        ``output_path``.

    Raises:
        ValueError: For a missing dataset or a model ``quantize_model`` refuses
            (the error names the layers).

    Example:

    >>> import keras, numpy as np, os, tempfile
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> data = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    >>> os.path.exists(quantize_calibrated(model, os.path.join(tempfile.mkdtemp(), "m.tflite"), data))
    True
    """
    from kopt.quantization.api import quantize_model

    if representative_dataset is None:
        raise ValueError(
            "quantize_calibrated calibrates activation ranges on representative_dataset. "
            "Received: representative_dataset=None"
        )
    if not isinstance(model, keras.Model):
        model = tflite_export.load_model(model)
    qat = quantize_model(model, scheme=scheme, float_layers=float_layers)
    calibrate(qat, representative_dataset, max_examples=max_examples)
    return tflite_export.convert(qat, output_path, mode="int8")


def _batches(source, batch_size):
    if isinstance(source, np.ndarray):
        for start in range(0, len(source), batch_size):
            yield source[start : start + batch_size]
        return
    if isinstance(source, dict):
        size = len(next(iter(source.values())))
        for start in range(0, size, batch_size):
            yield {name: np.asarray(value)[start : start + batch_size] for name, value in source.items()}
        return
    if isinstance(source, (list, tuple)) and all(isinstance(value, np.ndarray) for value in source):
        for start in range(0, len(source[0]), batch_size):
            yield [value[start : start + batch_size] for value in source]
        return
    for element in source:  # a tf.data.Dataset or another iterable of batches
        if isinstance(element, tuple) and len(element) == 2:
            element = element[0]  # (inputs, labels)
        yield element
