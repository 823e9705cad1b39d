"""The pruning benchmark's figure (accuracy against sparsity, gzipped sizes) and the figure helpers other benchmarks share."""

import os

from benchmarks import pruning_report

COLORS = {"kopt": "tab:blue", "tfmot": "tab:orange"}


def plot(summaries, sparsities, path, *, title="Pruning: kopt and tfmot"):
    """Writes a two-panel PNG to ``path``; frameworks without figures are left out.

    Left: float32 TFLite test accuracy against sparsity (mean over seeds, bars from
    the lowest to the highest seed), dense at 0%. Right: mean gzipped size of the
    float32 and int8 files, dense and per sparsity.
    """
    plt = pyplot()
    keys = [pruning_report.sparsity_key(s) for s in sparsities]
    figure, (accuracy_axis, size_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    present = [f for f in pruning_report.FRAMEWORKS if summaries.get(f) and summaries[f]["mean"]]
    for index, framework in enumerate(present):
        seeds = summaries[framework]["seeds"].values()
        # A small sideways shift keeps equal figures of the two frameworks visible.
        shift = 0.8 * (index - (len(present) - 1) / 2)
        xs, means, lows, highs = [], [], [], []
        for x, key in [(0.0, "dense_acc")] + [(100 * s, f"acc@{k}") for s, k in zip(sparsities, keys)]:
            values = [metrics[key] for metrics in seeds if key in metrics]
            if values:
                mean = sum(values) / len(values)
                xs.append(x + shift)
                means.append(mean)
                lows.append(mean - min(values))
                highs.append(max(values) - mean)
        accuracy_axis.errorbar(
            xs, means, yerr=[lows, highs], marker="o", capsize=3, label=framework, color=COLORS[framework]
        )
    accuracy_axis.set_xlabel("target sparsity (%), 0 = dense")
    accuracy_axis.set_ylabel("test accuracy, float32 TFLite (%)")
    accuracy_axis.set_title("Accuracy (mean, min-max over seeds)")
    accuracy_axis.grid(alpha=0.3)
    if present:
        accuracy_axis.legend()

    groups = ["dense"] + [f"{s:.0%}" for s in sparsities]
    width = 0.8 / max(1, 2 * len(present))
    for index, framework in enumerate(present):
        mean = summaries[framework]["mean"]
        for mode_index, (mode, dense_key, prefix, hatch) in enumerate(
            [("float32", "dense_gzip_float", "gzip_float", ""), ("int8", "dense_gzip_int8", "gzip_int8", "//")]
        ):
            values = [mean.get(dense_key, 0)] + [mean.get(f"{prefix}@{k}", 0) for k in keys]
            offset = (2 * index + mode_index) * width - 0.4 + width / 2
            size_axis.bar(
                [g + offset for g in range(len(groups))],
                [v / 1024 for v in values],
                width,
                label=f"{framework} {mode}",
                color=COLORS[framework],
                hatch=hatch,
                alpha=1.0 if mode == "float32" else 0.6,
            )
    size_axis.set_xticks(range(len(groups)), groups)
    size_axis.set_ylabel("gzipped .tflite (KiB), mean over seeds")
    size_axis.set_title("Gzipped TFLite size")
    size_axis.grid(alpha=0.3, axis="y")
    if present:
        size_axis.legend()
    return save_figure(figure, path, title)


def pyplot():
    """matplotlib's pyplot on the Agg backend, which needs no display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path, title):
    """Titles, lays out and writes ``figure`` to ``path`` as PNG, then closes it."""
    figure.suptitle(title)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return path


def accuracy_panels(rows, x_key, xlabel, path, title):
    """Test accuracy against ``row[x_key]``, one panel per ``row["model"]``, one series per variant, every seed.

    The figure of the sequence benchmarks (``structured_sequence``, ``clustering_sequence``); rows carry
    ``model``, ``variant``, ``accuracy`` (a fraction) and ``x_key``.
    """
    models = list(dict.fromkeys(r["model"] for r in rows))
    figure, axes = pyplot().subplots(1, len(models), figsize=(5.5 * len(models), 4), squeeze=False)
    for axis, model in zip(axes[0], models, strict=True):
        for variant in dict.fromkeys(r["variant"] for r in rows):
            points = [r for r in rows if r["model"] == model and r["variant"] == variant]
            axis.scatter([r[x_key] for r in points], [100 * r["accuracy"] for r in points], label=variant)
        axis.set_title(model)
        axis.set_xlabel(xlabel)
        axis.set_ylabel("test accuracy, %")
        axis.legend()
    return save_figure(figure, path, title)
