"""The quantization benchmark's figure: accuracy, and the size, step-time and latency ratios."""

from benchmarks import pruning_plot
from benchmarks import pruning_report
from benchmarks import quantization_report

_ACCURACY_BARS = (
    ("float Keras", "float_keras_acc"),
    ("float32 TFLite", "float_acc"),
    ("PTQ int8", "ptq_acc"),
    ("QAT int8", "qat_acc"),
)
# (panel title, [(bar label, metric)], target limit)
_RATIO_PANELS = (
    (
        "int8 / float32 file size",
        [("PTQ", "ptq_size_ratio"), ("QAT", "qat_size_ratio")],
        quantization_report.SIZE_RATIO_LIMIT,
    ),
    ("QAT / plain training step time", [("QAT", "step_ratio")], quantization_report.STEP_TIME_RATIO_LIMIT),
    (
        "int8 / float32 latency (XNNPACK)",
        [("PTQ", "ptq_latency_ratio"), ("QAT", "qat_latency_ratio")],
        quantization_report.LATENCY_RATIO_LIMIT,
    ),
)


def _spread(summary, key):
    """Mean and (below, above) distances to the lowest and highest seed; None if missing."""
    values = [metrics[key] for metrics in summary["seeds"].values() if key in metrics]
    if not values:
        return None
    mean = sum(values) / len(values)
    return mean, (mean - min(values), max(values) - mean)


def _bars(axis, summaries, present, groups):
    """Grouped bars: one group per ``(label, metric)``, one bar per framework, seed range as error bars."""
    width = 0.8 / max(1, len(present))
    for index, framework in enumerate(present):
        xs, means, lows, highs = [], [], [], []
        for position, (_, key) in enumerate(groups):
            spread = _spread(summaries[framework], key)
            if spread:
                xs.append(position + (index - (len(present) - 1) / 2) * width)
                means.append(spread[0])
                lows.append(spread[1][0])
                highs.append(spread[1][1])
        axis.bar(xs, means, width, yerr=[lows, highs], capsize=3, label=framework, color=pruning_plot.COLORS[framework])
    axis.set_xticks(range(len(groups)), [label for label, _ in groups])
    axis.grid(alpha=0.3, axis="y")


def plot(summaries, path, *, title="Quantization: kopt and tfmot"):
    """Writes a four-panel PNG to ``path``; frameworks without figures are left out.

    Panels: test accuracy of the float model and of each file; then the size,
    step-time and latency ratios with the issue's limit as a dashed line. Bars
    are means over seeds, error bars run from the lowest to the highest seed.
    """
    plt = pruning_plot.pyplot()
    present = [f for f in pruning_report.FRAMEWORKS if summaries.get(f) and summaries[f]["mean"]]
    figure, axes = plt.subplots(1, 4, figsize=(18, 4.5), gridspec_kw={"width_ratios": [2, 1, 1, 1]})
    accuracy_axis = axes[0]
    _bars(accuracy_axis, summaries, present, _ACCURACY_BARS)
    values = [summaries[f]["mean"][key] for f in present for _, key in _ACCURACY_BARS if key in summaries[f]["mean"]]
    if values:
        # Accuracies sit within a point or two of each other: a zero-based axis would hide them.
        accuracy_axis.set_ylim(max(0.0, min(values) - 1.0), min(100.0, max(values) + 0.5))
    accuracy_axis.set_ylabel("test accuracy (%)")
    accuracy_axis.set_title("Accuracy (mean, min-max over seeds)")
    for axis, (panel_title, groups, limit) in zip(axes[1:], _RATIO_PANELS):
        _bars(axis, summaries, present, groups)
        axis.axhline(limit, color="black", linestyle="--", linewidth=1, label=f"target {limit:g}")
        axis.set_title(panel_title)
        axis.set_ylabel("ratio")
    for axis in axes:
        if present:
            axis.legend(fontsize="small")
    return pruning_plot.save_figure(figure, path, title)
