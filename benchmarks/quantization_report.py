"""Turns quantization-benchmark results into figures, verdicts and a BENCHMARKS.md section.

Pure functions over the JSON document ``benchmarks/quantization.py`` writes;
nothing here trains or imports TensorFlow, so it is tested on made-up inputs.
Framework entries, verdicts and tables are those of ``pruning_report``.

One seed's result, once the benchmark has scored its files, reads::

    {"scores": {"float32" | "ptq_int8" | "qat_int8": {
         "tflite_accuracy", "keras_accuracy", "agreement", "bytes", "gzip_bytes",
         "latency_ms", "latency_no_xnnpack_ms", ...}},
     "plain_finetune": {"step_time_s_median", "step_cpu_s_median", "keras_accuracy", ...},
     "qat": {"step_time_s_median", "step_cpu_s_median", ...}, "versions": {...}}

``keras_accuracy`` and ``agreement`` of ``float32`` and ``ptq_int8`` refer to the
float Keras model, those of ``qat_int8`` to the QAT Keras model.
"""

from benchmarks import pruning_report
from benchmarks import quantization_models

# The targets.
ACCURACY_DROP_LIMIT_POINTS = 0.3
SIZE_RATIO_LIMIT = 0.27
STEP_TIME_RATIO_LIMIT = 1.3
LATENCY_RATIO_LIMIT = 1.0
AGREEMENT_MIN_PERCENT = 99.5


def seed_metrics(run):
    """Flattens one scored seed into ``{metric: value}``; missing figures are absent.

    Accuracies and agreements are percentages of the test set; drops are the
    float Keras model's accuracy minus the file's, in points; size and latency
    ratios divide by the same seed's float32 file; step-time ratios divide QAT's
    median step by plain fine-tuning's.
    """
    if not run or "error" in run or "scores" not in run:
        return {}
    scores = run["scores"]
    metrics = {}
    for kind, prefix in (("float32", "float"), ("ptq_int8", "ptq"), ("qat_int8", "qat")):
        score = scores.get(kind)
        if not score:
            continue
        metrics[f"{prefix}_acc"] = 100 * score["tflite_accuracy"]
        metrics[f"{prefix}_agreement"] = 100 * score["agreement"]
        metrics[f"{prefix}_bytes"] = score["bytes"]
        for latency_key, suffix in (("latency_ms", "ms"), ("latency_no_xnnpack_ms", "ms_no_xnnpack")):
            if score.get(latency_key) is not None:
                metrics[f"{prefix}_{suffix}"] = score[latency_key]
    if "float32" in scores:
        metrics["float_keras_acc"] = 100 * scores["float32"]["keras_accuracy"]
    if "qat_int8" in scores:
        metrics["qat_keras_acc"] = 100 * scores["qat_int8"]["keras_accuracy"]
    plain = run.get("plain_finetune") or {}
    if plain.get("keras_accuracy") is not None:
        metrics["plain_keras_acc"] = 100 * plain["keras_accuracy"]
    for prefix in ("ptq", "qat"):
        if "float_keras_acc" in metrics and f"{prefix}_acc" in metrics:
            metrics[f"{prefix}_drop"] = metrics["float_keras_acc"] - metrics[f"{prefix}_acc"]
        if "float_bytes" in metrics and f"{prefix}_bytes" in metrics:
            metrics[f"{prefix}_size_ratio"] = metrics[f"{prefix}_bytes"] / metrics["float_bytes"]
        for suffix in ("ms", "ms_no_xnnpack"):
            if f"float_{suffix}" in metrics and f"{prefix}_{suffix}" in metrics:
                ratio_key = f"{prefix}_latency_ratio" + ("_no_xnnpack" if suffix.endswith("xnnpack") else "")
                metrics[ratio_key] = metrics[f"{prefix}_{suffix}"] / metrics[f"float_{suffix}"]
    qat = run.get("qat") or {}
    for source, name in (("step_time_s_median", "step"), ("step_cpu_s_median", "cpu")):
        if plain.get(source) and qat.get(source):
            metrics[f"plain_{name}_ms"] = 1000 * plain[source]
            metrics[f"qat_{name}_ms"] = 1000 * qat[source]
            metrics[f"{name}_ratio"] = qat[source] / plain[source]
    return metrics


def summarize(framework_entry):
    """Returns ``{"seeds": {seed: metrics}, "mean": metrics}`` for one framework."""
    return pruning_report.summarize_runs(framework_entry, seed_metrics)


def targets():
    """The issue's targets as ``(label, metric, limit, unit, at_least)``; a ``None``
    limit marks the PTQ reference row, reported but not judged."""
    return [
        (
            f"QAT int8 TFLite accuracy within {ACCURACY_DROP_LIMIT_POINTS:g} points of the float Keras "
            "model (float - QAT int8)",
            "qat_drop",
            ACCURACY_DROP_LIMIT_POINTS,
            "points",
            False,
        ),
        ("QAT int8 TFLite file / float32 TFLite file (raw bytes)", "qat_size_ratio", SIZE_RATIO_LIMIT, "x", False),
        ("Training step time with QAT / plain training (medians)", "step_ratio", STEP_TIME_RATIO_LIMIT, "x", False),
        (
            "QAT int8 / float32 TFLite latency (XNNPACK, 1 thread, batch 1)",
            "qat_latency_ratio",
            LATENCY_RATIO_LIMIT,
            "x",
            False,
        ),
        (
            "Top-1 agreement of the QAT Keras model and its int8 TFLite",
            "qat_agreement",
            AGREEMENT_MIN_PERCENT,
            "%",
            True,
        ),
        ("PTQ int8 accuracy drop, no retraining (float Keras - PTQ int8 TFLite)", "ptq_drop", None, "points", False),
    ]


def judge(summaries):
    """One dict per target with each framework's mean and verdict (``pruning_report``'s form)."""
    return pruning_report.judge_targets(summaries, targets())


def _with_verdict(digits, limit, at_least):
    def render(value):
        text = pruning_report.fmt(value, digits)
        if value is None or limit is None:
            return text
        return f"{text} {pruning_report.verdict(value, limit, at_least=at_least)}"

    return render


_SHORT_TITLES = {
    "qat_drop": "QAT drop (points)",
    "qat_size_ratio": "size ratio",
    "step_ratio": "step ratio",
    "qat_latency_ratio": "latency ratio",
    "qat_agreement": "agreement (%)",
    "ptq_drop": "PTQ drop (points, reference)",
}


def render_section(document, summaries, judged):
    """The markdown of the quantization section (without its markers)."""
    model = document.get("settings", {}).get("model", quantization_models.DEFAULT_MODEL)
    title = "Quantization: kopt and tfmot side by side"
    if model != quantization_models.DEFAULT_MODEL:
        title = f"Quantization of {model}: kopt and tfmot side by side"
    lines = pruning_report.run_lines(document, title)
    lines += ["", "Settings, the same for both sides:", ""]
    lines += [f"- {line}" for line in document["settings_description"]]
    lines += [
        "",
        "### Targets (issue), judged on the mean over seeds",
        "",
        (
            "The float Keras model is the trained model QAT starts from; the QAT model and a plain "
            "fine-tune of the float model get the same extra epochs (the plain fine-tune's accuracy is "
            "in the accuracy table). Ratios divide by the same framework and seed's float32 file or "
            "plain fine-tune."
        ),
        "",
    ]
    lines += pruning_report.target_table(judged)
    lines += ["", "### Targets per seed", ""]
    lines += pruning_report.metric_table(
        document,
        summaries,
        [
            (_SHORT_TITLES[key], key, _with_verdict(3 if unit == "x" else 2, limit, at_least))
            for _, key, limit, unit, at_least in targets()
        ],
    )
    lines += ["", "### Test accuracy (%) and top-1 agreement with the Keras model (%)", ""]
    lines += pruning_report.metric_table(
        document,
        summaries,
        [
            ("float Keras", "float_keras_acc", 2),
            ("float32 TFLite", "float_acc", 2),
            ("plain fine-tune Keras", "plain_keras_acc", 2),
            ("PTQ int8", "ptq_acc", 2),
            ("QAT Keras", "qat_keras_acc", 2),
            ("QAT int8", "qat_acc", 2),
            ("float32 agreement", "float_agreement", 2),
            ("PTQ agreement", "ptq_agreement", 2),
            ("QAT agreement", "qat_agreement", 2),
        ],
    )
    lines += ["", "### TFLite size (raw bytes) and ratio to the float32 file", ""]
    lines += pruning_report.metric_table(
        document,
        summaries,
        [
            ("float32", "float_bytes", 0),
            ("PTQ int8", "ptq_bytes", 0),
            ("QAT int8", "qat_bytes", 0),
            ("PTQ ratio", "ptq_size_ratio", 3),
            ("QAT ratio", "qat_size_ratio", 3),
        ],
    )
    lines += [
        "",
        "### Training step time (median ms per step) and QAT / plain ratio",
        "",
        (
            "The CPU columns use process CPU time per step instead of wall time: not the target's "
            "measure, but it moves less when other work shares the machine."
        ),
        "",
    ]
    lines += pruning_report.metric_table(
        document,
        summaries,
        [
            ("plain", "plain_step_ms", 2),
            ("QAT", "qat_step_ms", 2),
            ("ratio", "step_ratio", 3),
            ("CPU plain", "plain_cpu_ms", 2),
            ("CPU QAT", "qat_cpu_ms", 2),
            ("CPU ratio", "cpu_ratio", 3),
        ],
    )
    lines += [
        "",
        "### Latency (median ms per `invoke()`, batch 1, 1 thread) and ratio to float32",
        "",
        "The last column times the builtin kernels with XNNPACK off, for reference.",
        "",
    ]
    lines += pruning_report.metric_table(
        document,
        summaries,
        [
            ("float32", "float_ms", 4),
            ("PTQ int8", "ptq_ms", 4),
            ("QAT int8", "qat_ms", 4),
            ("PTQ ratio", "ptq_latency_ratio", 3),
            ("QAT ratio", "qat_latency_ratio", 3),
            ("QAT ratio, no XNNPACK", "qat_latency_ratio_no_xnnpack", 3),
        ],
    )
    if document.get("plot"):
        lines += ["", f"![Quantization: accuracy, size, step-time and latency ratios]({document['plot']})"]
    return "\n".join(lines) + "\n"
