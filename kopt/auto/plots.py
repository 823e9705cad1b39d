"""PNG figures of the search: the sensitivity heatmap and the accuracy/size front.

Both are drawn with matplotlib's object API on an Agg canvas (no global state,
no display needed) and written atomically.

Example:

>>> import os, tempfile
>>> points = [{"step": 0, "accuracy": 97.0, "gzip_bytes": 18000, "within_budget": True},
...           {"step": 1, "accuracy": 96.8, "gzip_bytes": 7000, "within_budget": True}]
>>> path = plot_pareto(points, 97.1, 0.5, os.path.join(tempfile.mkdtemp(), "front.png"))
>>> open(path, "rb").read(4) == b"\\x89PNG"
True
"""

import io
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from tflite_export.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from kopt.auto.sensitivity import SensitivityTable

__all__ = ["plot_pareto", "plot_sensitivity"]


def plot_sensitivity(table: "SensitivityTable", path: str) -> str:
    """Draws a :class:`kopt.auto.SensitivityTable` as a heatmap of accuracy drops.

    Rows are layers (with their weight counts), columns the sparsity levels and
    bit-widths; each cell is the validation accuracy lost (points) with that
    layer alone compressed, no retraining.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = [f"{s:.0%}" for s in table.sparsities] + [f"{b}-bit" for b in table.bits]
    drops = np.array(
        [
            [table.baseline_accuracy - a for a in table.accuracy[name] + table.quantized_accuracy[name]]
            for name in table.layers
        ]
    )
    figure = Figure(figsize=(1.2 + 0.8 * len(columns), 1.4 + 0.45 * len(table.layers)), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(np.maximum(drops, 0), cmap="Reds", aspect="auto", vmin=0)
    for row in range(drops.shape[0]):
        for column in range(drops.shape[1]):
            axes.text(column, row, f"{drops[row, column]:.1f}", ha="center", va="center", fontsize=8)
    axes.set_xticks(range(len(columns)), columns)
    axes.set_yticks(range(len(table.layers)), [f"{n} ({table.sizes[n]})" for n in table.layers])
    axes.set_xlabel("pruned to (sparsity) / weights quantized to")
    axes.set_title(f"Accuracy drop, one layer at a time (baseline {table.baseline_accuracy:.2f}%)", fontsize=9)
    figure.colorbar(image, ax=axes, label="points")
    figure.tight_layout()
    return _save(figure, path)


def plot_pareto(
    points: list[dict[str, Any]],
    float_accuracy: float,
    max_accuracy_drop: float,
    path: str,
    *,
    best_step: int | None = None,
) -> str:
    """Draws every tried point as accuracy against gzipped int8 file size.

    Args:
        points: Dicts with ``step``, ``accuracy`` (percent), ``gzip_bytes`` and
            ``within_budget``.
        float_accuracy: The float model's validation accuracy (percent).
        max_accuracy_drop: The budget, in points; drawn as a line.
        path: The PNG to write.
        best_step: The step of the kept model, circled.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for within, color, label in ((True, "tab:green", "within budget"), (False, "tab:red", "breaks budget")):
        chosen = [p for p in points if bool(p["within_budget"]) == within]
        if chosen:
            axes.scatter(
                [p["gzip_bytes"] / 1024 for p in chosen], [p["accuracy"] for p in chosen], c=color, label=label
            )
    ordered = sorted(points, key=lambda p: p["step"])
    axes.plot([p["gzip_bytes"] / 1024 for p in ordered], [p["accuracy"] for p in ordered], color="0.7", zorder=0)
    for point in points:
        axes.annotate(
            str(point["step"]),
            (point["gzip_bytes"] / 1024, point["accuracy"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    best = [p for p in points if p["step"] == best_step]
    if best:
        axes.scatter(
            [best[0]["gzip_bytes"] / 1024],
            [best[0]["accuracy"]],
            s=160,
            facecolors="none",
            edgecolors="black",
            label="kept",
        )
    axes.axhline(float_accuracy, color="tab:blue", linestyle=":", label="float")
    axes.axhline(float_accuracy - max_accuracy_drop, color="tab:blue", linestyle="--", label="budget")
    axes.set_xlabel("int8 TFLite file, gzipped (KiB)")
    axes.set_ylabel("validation accuracy of the file (%)")
    axes.set_title("Accuracy-aware compression: points tried (label = step)", fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, path)


def _save(figure, path):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    return path
