"""The run report: a table for the terminal, JSON for machines, a PNG for people."""

import io
import os

from kopt.utils.atomic import atomic_write_bytes
from kopt.utils.atomic import atomic_write_json

# (report key, column title, formatter)
_COLUMNS = (
    ("keras_accuracy", "keras acc", lambda v: f"{v:.4f}"),
    ("tflite_accuracy", "tflite acc", lambda v: f"{v:.4f}"),
    ("tflite_agreement", "agreement", lambda v: f"{v:.4f}"),
    ("tflite_bytes", "tflite bytes", lambda v: f"{v:,}"),
    ("tflite_gzip_bytes", "gzip bytes", lambda v: f"{v:,}"),
    ("params", "params", lambda v: f"{v:,}"),
    ("sparsity", "sparsity", lambda v: f"{v:.3f}"),
    ("tflite_mode", "mode", str),
)
_ROWS = ("baseline", "optimized")


def format_table(report):
    """Returns the baseline and optimized figures of ``report`` as a text table.

    Example:

    >>> entry = dict(keras_accuracy=0.9, tflite_accuracy=0.9, tflite_agreement=1.0,
    ...              tflite_bytes=1000, tflite_gzip_bytes=900, params=10,
    ...              sparsity=0.0, tflite_mode="float32")
    >>> print(format_table({"baseline": entry, "optimized": entry}).splitlines()[0])
    model     | keras acc | tflite acc | agreement | tflite bytes | gzip bytes | params | sparsity | mode
    """
    header = ["model"] + [title for _, title, _ in _COLUMNS]
    rows = [header]
    for row_name in _ROWS:
        entry = report[row_name]
        rows.append([row_name] + [fmt(entry[key]) for key, _, fmt in _COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def write_report(report, path):
    """Writes ``report`` as JSON to ``path`` and a comparison plot beside it.

    Both files are written atomically. The PNG has the JSON's name with ``.png``.

    Returns:
        ``(json_path, png_path)``.
    """
    atomic_write_json(path, report)
    png_path = os.path.splitext(path)[0] + ".png"
    atomic_write_bytes(png_path, render_png(report))
    return path, png_path


def render_png(report):
    """Returns PNG bytes of bar charts comparing baseline and optimized models."""
    # The object-oriented API needs no display and leaves pyplot's global state alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = (
        ("Accuracy (test set)", ("keras_accuracy", "tflite_accuracy"), ("Keras", "TFLite")),
        ("TFLite size (KiB)", ("tflite_bytes", "tflite_gzip_bytes"), ("raw", "gzip")),
    )
    figure = Figure(figsize=(9, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    for index, (title, keys, labels) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        width = 0.38
        tallest = 0.0
        for offset, (key, label) in enumerate(zip(keys, labels)):
            values = [report[row][key] for row in _ROWS]
            if key.endswith("bytes"):
                values = [v / 1024 for v in values]
            positions = [i + (offset - 0.5) * width for i in range(len(_ROWS))]
            bars = axes.bar(positions, values, width, label=label)
            tallest = max(tallest, *values)
            axes.bar_label(bars, fmt="%.3f" if "accuracy" in key else "%.1f", fontsize=8)
        axes.set_xticks(range(len(_ROWS)), _ROWS)
        axes.set_title(title)
        axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
        # Headroom so the value labels stay inside the axes.
        axes.set_ylim(0, 1.1 if "accuracy" in keys[0] else max(tallest, 1e-9) * 1.15)
    techniques = ", ".join(report.get("techniques") or []) or "none"
    dataset = report.get("dataset", {}).get("name", "?")
    figure.suptitle(f"kopt-optimize on {dataset}; techniques: {techniques}")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
