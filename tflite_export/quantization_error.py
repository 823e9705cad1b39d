"""Where full-integer PTQ loses accuracy: per-tensor error of the int8 file against float.

TensorFlow's ``QuantizationDebugger`` (which runs TensorFlow's own interpreter,
deprecated in favour of LiteRT's, and warns so) runs the calibrated int8 model and, after
each op, the same op in float on the dequantized inputs, so each row measures the
error that op's own quantization adds. :func:`quantization_error` drives it with
the same conversion ``convert(mode="int8")`` uses
(:func:`tflite_export.converter.conversion_copy`) and returns one row per quantized tensor;
``rmse_steps`` (the root-mean-square error in units of the tensor's
quantization step) is the column to sort by: well above 0.3 (the error of
rounding alone) marks a tensor whose range or grid is poor, a candidate to keep
in float, to quantize with QAT, or to calibrate on more data.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from typing import TYPE_CHECKING
from typing import Any

import tensorflow as tf

from tflite_export import calibration
from tflite_export import export_hooks
from tflite_export import recurrent
from tflite_export.converter import _as_model
from tflite_export.converter import _input_signature
from tflite_export.converter import _make_converter
from tflite_export.converter import conversion_copy

if TYPE_CHECKING:
    import keras
    import numpy as np

__all__ = ["format_quantization_error", "quantization_error"]


def quantization_error(
    model_or_path: keras.Model | str | os.PathLike,
    representative_dataset: np.ndarray | list[np.ndarray] | dict[str, np.ndarray] | tf.data.Dataset,
    *,
    max_examples: int = 64,
) -> list[dict[str, Any]]:
    """Per-tensor error of the model's int8 PTQ file (see the module docstring).

    Args:
        model_or_path: A float ``keras.Model`` or ``.keras`` path.
        representative_dataset: Typical inputs, as for ``convert``; they both
            calibrate and measure.
        max_examples: Use at most this many examples.

    Returns:
        A list of dicts, one per quantized tensor in op order: ``op``,
        ``tensor``, ``elements``, ``scale``, ``zero_point``, ``rmse``,
        ``rmse_steps``, ``max_abs_error`` and ``mean_error``.

    Raises:
        ValueError: For a quantization-aware model (its file computes what it
            computes; compare ``predict`` with the model instead), no data, or
            a bad ``max_examples``.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)])
    >>> data = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    >>> rows = quantization_error(model, data)
    >>> [row["op"] for row in rows]
    ['FULLY_CONNECTED', 'FULLY_CONNECTED']
    >>> all(row["rmse_steps"] < 1.0 for row in rows)  # rounding alone: about 0.3 steps
    True
    """
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive int. Received: max_examples={max_examples!r}")
    if representative_dataset is None or not calibration.is_representative(representative_dataset):
        raise ValueError(
            "quantization_error needs representative_dataset: a tf.data.Dataset or array of typical inputs. "
            f"Received: {type(representative_dataset).__name__}"
        )
    model = _as_model(model_or_path)
    if export_hooks.is_quantization_aware(model):
        raise ValueError(
            f"Model {model.name!r} is quantization-aware: its int8 file computes what it computes. Compare "
            "tflite_export.predict(file, x) with model.predict(x) instead."
        )
    input_signature = _input_signature(model, recurrent.automatic_batch_size(model))
    model = conversion_copy(model, "int8", quantization_aware=False)

    def examples():
        for count, example in enumerate(calibration.calibration_generator(representative_dataset, model)()):
            if count >= max_examples:
                return
            yield example

    with tempfile.TemporaryDirectory(prefix="kopt-qdebug-") as workdir:
        converter = _make_converter(model, workdir, False, input_signature)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = examples
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=examples)
        debugger.run()
        table = io.StringIO()
        debugger.layer_statistics_dump(table)
    return _rows(table.getvalue())


def _rows(csv_text):
    lines = [line for line in csv_text.strip().splitlines() if line]
    header = lines[0].split(",")
    rows = []
    for line in lines[1:]:
        values = dict(zip(header, line.split(",", len(header) - 1)))
        scale = float(values["scale"])
        rmse = math.sqrt(max(float(values["mean_squared_error"]), 0.0))
        rows.append(
            {
                "op": values["op_name"],
                "tensor": values["tensor_name"],
                "elements": int(float(values["num_elements"])),
                "scale": scale,
                "zero_point": int(float(values["zero_point"])),
                "rmse": rmse,
                "rmse_steps": rmse / scale if scale > 0 else float("inf"),
                "max_abs_error": float(values["max_abs_error"]),
                "mean_error": float(values["mean_error"]),
            }
        )
    return rows


def format_quantization_error(rows: list[dict[str, Any]], top: int = 10) -> str:
    """The ``top`` rows with the largest error in steps, as a text table.

    Example:

    >>> print(format_quantization_error([{"op": "CONV_2D", "tensor": "conv", "rmse_steps": 0.31, "rmse": 0.002,
    ...                                   "max_abs_error": 0.01, "scale": 0.0065}]))
    op      | rmse (steps) | rmse  | max abs error | scale  | tensor
    --------+--------------+-------+---------------+--------+-------
    CONV_2D | 0.31         | 0.002 | 0.01          | 0.0065 | conv
    """
    chosen = sorted(rows, key=lambda row: -row["rmse_steps"])[:top]
    table = [("op", "rmse (steps)", "rmse", "max abs error", "scale", "tensor")]
    table += [
        (row["op"], f"{row['rmse_steps']:.2f}", f"{row['rmse']:.3g}", f"{row['max_abs_error']:.3g}", f"{row['scale']:.3g}",
         row["tensor"])
        for row in chosen
    ]  # fmt: skip
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)
