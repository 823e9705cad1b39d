"""Post-training quantization conveniences: the usual converter choices, by name.

For users who cannot fine-tune, these helpers name the usual choices and pass them
to :func:`tflite_export.convert`, which writes the file atomically:

* :func:`quantize_dynamic_range`: int8 weights, float activations; no data needed.
  About 4x smaller, often faster on CPU.
* :func:`quantize_float16`: float16 weights; no data needed. 2x smaller, and
  GPU delegates run it natively.
* :func:`quantize_full_integer`: int8 weights and activations calibrated on a
  representative dataset; int8 or uint8 model inputs/outputs for integer-only
  accelerators (Edge TPU, microcontrollers).
* :func:`quantize_int16x8`: int16 activations with int8 weights, for models whose
  activations need more resolution than int8.

``kopt.quantization`` offers the same functions, beside its own calibrated PTQ
(``kopt.quantization.quantize_calibrated``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tflite_export.converter import convert

if TYPE_CHECKING:
    import keras
    import numpy as np
    import tensorflow as tf

__all__ = ["quantize_dynamic_range", "quantize_float16", "quantize_full_integer", "quantize_int16x8"]

_IO_TYPES = ("float32", "int8", "uint8")


def quantize_dynamic_range(model: keras.Model | str | os.PathLike, output_path: str | os.PathLike) -> str:
    """Writes a file with int8 weights and float activations.

    Args:
        model: A ``keras.Model`` or a ``.keras`` path.
        output_path: Destination ending in ``.tflite``.

    Returns:
        ``output_path``.

    Example:

    >>> import keras, os, tempfile
    >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64)])
    >>> path = quantize_dynamic_range(model, os.path.join(tempfile.mkdtemp(), "m.tflite"))
    >>> os.path.getsize(path) < 64 * 64 * 4
    True
    """
    return convert(model, output_path, mode="dynamic")


def quantize_float16(model: keras.Model | str | os.PathLike, output_path: str | os.PathLike) -> str:
    """Writes a file whose weights are stored as float16.

    Args:
        model: A ``keras.Model`` or a ``.keras`` path.
        output_path: Destination ending in ``.tflite``.

    Returns:
        ``output_path``.

    Example:

    >>> import keras, os, tempfile
    >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64)])
    >>> path = quantize_float16(model, os.path.join(tempfile.mkdtemp(), "m.tflite"))
    >>> os.path.getsize(path) < 64 * 64 * 4
    True
    """
    return convert(model, output_path, mode="float16")


def quantize_full_integer(
    model: keras.Model | str | os.PathLike,
    output_path: str | os.PathLike,
    representative_dataset: np.ndarray | list[np.ndarray] | dict[str, np.ndarray] | tf.data.Dataset,
    *,
    input_type: str = "int8",
    output_type: str = "int8",
) -> str:
    """Writes a fully integer file, activation ranges calibrated on typical inputs.

    Args:
        model: A ``keras.Model`` or a ``.keras`` path.
        output_path: Destination ending in ``.tflite``.
        representative_dataset: A NumPy array of inputs or a ``tf.data.Dataset``
            of ``(inputs, labels)`` or input batches; up to 256 examples are used.
        input_type: ``"int8"`` (default), ``"uint8"`` or ``"float32"`` model input.
        output_type: The same choice for the model output.

    Returns:
        ``output_path``.

    Raises:
        ValueError: For a missing dataset or an unknown input/output type.

    Example:

    >>> import keras, numpy as np, os, tempfile
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> images = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    >>> path = quantize_full_integer(model, os.path.join(tempfile.mkdtemp(), "m.tflite"), images)
    >>> os.path.exists(path)
    True
    """
    for name, value in (("input_type", input_type), ("output_type", output_type)):
        if value not in _IO_TYPES:
            raise ValueError(f"{name} must be one of {_IO_TYPES}. Received: {name}={value!r}")
    if representative_dataset is None:
        raise ValueError(
            "Full-integer quantization calibrates activation ranges on representative_dataset "
            "(about 100-500 typical inputs). Received: representative_dataset=None"
        )
    return convert(
        model,
        output_path,
        mode="int8",
        representative_dataset=representative_dataset,
        inference_input_type=input_type,
        inference_output_type=output_type,
    )


def quantize_int16x8(
    model: keras.Model | str | os.PathLike,
    output_path: str | os.PathLike,
    representative_dataset: np.ndarray | list[np.ndarray] | dict[str, np.ndarray] | tf.data.Dataset,
) -> str:
    """Writes a file with int16 activations and int8 weights (float inputs/outputs).

    Args:
        model: A ``keras.Model`` or a ``.keras`` path.
        output_path: Destination ending in ``.tflite``.
        representative_dataset: Typical inputs, as for :func:`quantize_full_integer`.

    Returns:
        ``output_path``.

    Example:

    >>> import keras, numpy as np, os, tempfile
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> images = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    >>> os.path.exists(quantize_int16x8(model, os.path.join(tempfile.mkdtemp(), "m.tflite"), images))
    True
    """
    if representative_dataset is None:
        raise ValueError(
            "16x8 quantization calibrates activation ranges on representative_dataset. "
            "Received: representative_dataset=None"
        )
    return convert(model, output_path, mode="int16x8", representative_dataset=representative_dataset)
