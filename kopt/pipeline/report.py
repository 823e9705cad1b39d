"""The run report: a table for the terminal, JSON for machines, a PNG for people."""

import io
import math
import os

from tflite_export.atomic import atomic_write_bytes
from tflite_export.atomic import atomic_write_json

# (report key, column title, formatter)
_COLUMNS = (
    ("keras_accuracy", "keras acc", lambda v: f"{v:.4f}"),
    ("tflite_accuracy", "tflite acc", lambda v: f"{v:.4f}"),
    ("tflite_agreement", "agreement", lambda v: f"{v:.4f}"),
    ("tflite_bytes", "tflite bytes", lambda v: f"{v:,}"),
    ("tflite_gzip_bytes", "gzip bytes", lambda v: f"{v:,}"),
    # Weights at their own bit width (kopt.quantization.packed_size); "-" in reports from before it.
    ("packed_bytes", "packed bytes", lambda v: f"{v:,}"),
    ("params", "params", lambda v: f"{v:,}"),
    ("sparsity", "sparsity", lambda v: f"{v:.3f}"),
    ("tflite_mode", "mode", str),
)
_ROWS = ("baseline", "optimized")


def format_table(report):
    """Returns the baseline and optimized figures of ``report`` as a text table.

    Example:

    >>> entry = dict(keras_accuracy=0.9, tflite_accuracy=0.9, tflite_agreement=1.0,
    ...              tflite_bytes=1000, tflite_gzip_bytes=900, packed_bytes=40, params=10,
    ...              sparsity=0.0, tflite_mode="float32")
    >>> print(format_table({"baseline": entry, "optimized": entry}).splitlines()[0])
    model     | keras acc | tflite acc | agreement | tflite bytes | gzip bytes | packed bytes | params | sparsity | mode
    """
    header = ["model"] + [title for _, title, _ in _COLUMNS]
    rows = [header]
    for row_name in _ROWS:
        entry = report[row_name]
        rows.append([row_name] + ["-" if entry.get(key) is None else fmt(entry[key]) for key, _, fmt in _COLUMNS])
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
    png_path = png_path_for(path)
    atomic_write_bytes(png_path, render_png(report))
    return path, png_path


def png_path_for(path):
    """The path of the plot written beside the JSON report at ``path``."""
    return os.path.splitext(path)[0] + ".png"


def render_png(report):
    """Returns PNG bytes of bar charts comparing baseline and optimized models."""
    # The object-oriented API needs no display and leaves pyplot's global state alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = (
        ("Accuracy (test set)", ("keras_accuracy", "tflite_accuracy"), ("Keras", "TFLite")),
        ("Size (KiB)", ("tflite_bytes", "tflite_gzip_bytes", "packed_bytes"), ("TFLite", "gzip", "packed")),
    )
    figure = Figure(figsize=(9, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    for index, (title, keys, labels) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        width = 0.76 / len(keys)
        tallest = 0.0
        for offset, (key, label) in enumerate(zip(keys, labels)):
            values = [report[row].get(key) or 0 for row in _ROWS]  # packed_bytes: absent from older reports
            if key.endswith("bytes"):
                values = [v / 1024 for v in values]
            positions = [i + (offset - (len(keys) - 1) / 2) * width for i in range(len(_ROWS))]
            bars = axes.bar(positions, values, width, label=label)
            tallest = max(tallest, *values)
            axes.bar_label(bars, fmt="%.3f" if "accuracy" in key else "%.1f", fontsize=8)
        axes.set_xticks(range(len(_ROWS)), _ROWS)
        axes.set_title(title)
        axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(keys), frameon=False)
        # Headroom so the value labels stay inside the axes.
        axes.set_ylim(0, 1.1 if "accuracy" in keys[0] else max(tallest, 1e-9) * 1.15)
    techniques = ", ".join(report.get("techniques") or []) or "none"
    dataset = report.get("dataset", {}).get("name", "?")
    figure.suptitle(f"kopt-optimize on {dataset}; techniques: {techniques}")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def format_trials(rows):
    """Returns the trials as a text table, best score marked with ``*``.

    Example:

    >>> rows = [{"trial_id": "0", "status": "COMPLETED", "values": {"learning_rate": 0.01},
    ...          "val_accuracy": 0.9, "gzip_bytes": 2048, "within_budget": True, "score": 0.9}]
    >>> print(format_trials(rows).splitlines()[2])
    * 0     | COMPLETED | 0.9000  | 2.0      | yes    | learning_rate=0.01
    """
    scored = [row["score"] for row in rows if row.get("score") is not None]
    best = max(scored) if scored else math.nan
    table = [["  trial", "status", "val acc", "gzip KiB", "budget", "values"]]
    for row in rows:
        accuracy = "-" if row.get("val_accuracy") is None else f"{row['val_accuracy']:.4f}"
        size = "-" if row.get("gzip_bytes") is None else f"{row['gzip_bytes'] / 1024:.1f}"
        budget = {True: "yes", False: "over", None: "-"}[row.get("within_budget")]
        values = ", ".join(f"{key}={_short(value)}" for key, value in row["values"].items())
        mark = "*" if row.get("score") == best else " "
        table.append([f"{mark} {row['trial_id']}", row["status"], accuracy, size, budget, values])
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def write_trials_png(report, path):
    """Writes a plot of each trial's validation accuracy against its gzip size.

    The PNG goes beside the JSON report ``path``, named ``<stem>_trials.png``;
    the best trial is marked and the size budget, if any, drawn as a line.

    Returns:
        The PNG's path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [row for row in report["trials"] if row.get("val_accuracy") is not None]
    figure = Figure(figsize=(6.5, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    best = report["search"]["best_trial"]
    for row in rows:
        size = row["gzip_bytes"] / 1024
        is_best = row["trial_id"] == best
        axes.scatter(size, row["val_accuracy"], s=60 if is_best else 30, c="tab:red" if is_best else "tab:blue")
        axes.annotate(
            row["trial_id"], (size, row["val_accuracy"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    budget = report["search"].get("size_budget_kib")
    if budget is not None:
        axes.axvline(budget, color="grey", linestyle="--", label=f"budget {budget:g} KiB")
        axes.legend(fontsize=8)
    axes.set_xlabel("optimized .tflite, gzip KiB")
    axes.set_ylabel("validation accuracy (TFLite)")
    axes.set_title(f"{report['search']['tuner']} search: {len(rows)} trials (best in red)")
    figure.tight_layout()
    png_path = os.path.splitext(path)[0] + "_trials.png"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(png_path, buffer.getvalue())
    return png_path


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)
