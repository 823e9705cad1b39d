"""Float against optimized: one comparison of two ``.tflite`` files of one Keras model.

``compare`` runs both files on the same labelled data and times both in the
interpreter; ``format_comparison`` prints the result as a table and
``write_comparison`` writes it as JSON with a PNG beside it (size, accuracy,
latency), both atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

from tflite_export.atomic import atomic_write_bytes
from tflite_export.atomic import atomic_write_json
from tflite_export.benchmark import benchmark
from tflite_export.inspect import inspect
from tflite_export.inspect import is_fully_integer
from tflite_export.sizes import file_sizes
from tflite_export.verify import verify

if TYPE_CHECKING:
    import keras

__all__ = ["compare", "format_comparison", "write_comparison"]

_ROWS = ("float32", "optimized")


def compare(
    float_path: str | os.PathLike,
    optimized_path: str | os.PathLike,
    keras_model: keras.Model,
    dataset: Iterable[tuple[Any, Any]] | tuple[Any, Any],
    *,
    threads: int = 1,
    runs: int = 50,
    warmup: int = 5,
    amx: bool = True,
) -> dict[str, Any]:
    """Measures a float file and an optimized file of ``keras_model`` side by side.

    Args:
        float_path: The float32 conversion of ``keras_model``.
        optimized_path: The optimized conversion.
        keras_model: The model both were converted from.
        dataset: Labelled test data, as :func:`tflite_export.verify` takes it.
        threads: Interpreter threads for the latency figures.
        runs: Timed calls per file and XNNPACK setting.
        warmup: Untimed calls before them.
        amx: ``False`` times both files with Intel AMX refused, as
            :func:`tflite_export.benchmark` does.

    Returns:
        ``{"float32": entry, "optimized": entry, "size_ratio", "gzip_ratio",
        "latency_ratio"}``; each entry has ``path``, ``bytes``, ``gzip_bytes``,
        ``tflite_accuracy``, ``keras_accuracy``, ``agreement``, ``max_abs_diff``,
        ``latency`` (``benchmark``'s result at batch 1), ``op_counts`` and
        ``fully_integer``. Ratios are optimized over float; the latency ratio
        uses XNNPACK medians.
    """
    result = {}
    for name, path in zip(_ROWS, (float_path, optimized_path)):
        checked = verify(path, keras_model, dataset)
        sizes = file_sizes(path)
        inspection = inspect(path)
        integer, _ = is_fully_integer(inspection)
        result[name] = {
            "path": os.path.abspath(path),
            "bytes": sizes["bytes"],
            "gzip_bytes": sizes["gzip_bytes"],
            "tflite_accuracy": checked["tflite_accuracy"],
            "keras_accuracy": checked["keras_accuracy"],
            "agreement": checked["agreement"],
            "max_abs_diff": checked["max_abs_diff"],
            "latency": benchmark(path, threads=threads, runs=runs, warmup=warmup, batch_size=1, amx=amx),
            "op_counts": inspection["op_counts"],
            "fully_integer": integer,
        }
    float_entry, optimized = result["float32"], result["optimized"]
    result["size_ratio"] = optimized["bytes"] / float_entry["bytes"]
    result["gzip_ratio"] = optimized["gzip_bytes"] / float_entry["gzip_bytes"]
    result["latency_ratio"] = (
        optimized["latency"]["xnnpack"]["median_ms"] / float_entry["latency"]["xnnpack"]["median_ms"]
    )
    return result


def format_comparison(result: dict[str, Any]) -> str:
    """The comparison as a text table, one row per file.

    Example:

    >>> entry = {"bytes": 1000, "gzip_bytes": 900, "tflite_accuracy": 0.9, "agreement": 1.0,
    ...          "latency": {"xnnpack": {"median_ms": 0.2}, "no_xnnpack": {"median_ms": 0.3}},
    ...          "fully_integer": False}
    >>> print(format_comparison({"float32": entry, "optimized": entry}).splitlines()[0])
    file      | bytes | gzip bytes | tflite acc | agreement | ms (XNNPACK) | ms (builtin) | fully int8
    """
    header = ["file", "bytes", "gzip bytes", "tflite acc", "agreement", "ms (XNNPACK)", "ms (builtin)", "fully int8"]
    rows = [header]
    for name in _ROWS:
        entry = result[name]
        latency = entry["latency"]
        rows.append(
            [
                name,
                f"{entry['bytes']:,}",
                f"{entry['gzip_bytes']:,}",
                f"{entry['tflite_accuracy']:.4f}",
                f"{entry['agreement']:.4f}",
                f"{latency['xnnpack']['median_ms']:.3f}",
                f"{latency['no_xnnpack']['median_ms']:.3f}",
                "yes" if entry["fully_integer"] else "no",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def write_comparison(result: dict[str, Any], path: str | os.PathLike) -> tuple[str | os.PathLike, str]:
    """Writes ``result`` as JSON to ``path`` and a PNG with the same stem; returns both paths."""
    atomic_write_json(path, result)
    png_path = os.path.splitext(path)[0] + ".png"
    atomic_write_bytes(png_path, _render_png(result))
    return path, png_path


def _render_png(result):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = (
        ("Size (KiB)", lambda e: (e["bytes"] / 1024, e["gzip_bytes"] / 1024), ("raw", "gzip"), "%.1f"),
        ("Top-1 accuracy", lambda e: (e["keras_accuracy"], e["tflite_accuracy"]), ("Keras", "TFLite"), "%.3f"),
        (
            "Latency, batch 1 (ms, median)",
            lambda e: (e["latency"]["xnnpack"]["median_ms"], e["latency"]["no_xnnpack"]["median_ms"]),
            ("XNNPACK", "builtin"),
            "%.3f",
        ),
    )
    figure = Figure(figsize=(11, 4), dpi=100)
    FigureCanvasAgg(figure)
    for index, (title, values_of, labels, fmt) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        width = 0.38
        tallest = 0.0
        for offset, label in enumerate(labels):
            values = [values_of(result[row])[offset] for row in _ROWS]
            positions = [i + (offset - 0.5) * width for i in range(len(_ROWS))]
            bars = axes.bar(positions, values, width, label=label)
            axes.bar_label(bars, fmt=fmt, fontsize=8)
            tallest = max(tallest, *values)
        axes.set_xticks(range(len(_ROWS)), _ROWS)
        axes.set_title(title)
        axes.set_ylim(0, max(tallest, 1e-9) * 1.15)
        axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    figure.suptitle(f"tflite_export: float32 vs optimized (size x{result['size_ratio']:.2f})")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
