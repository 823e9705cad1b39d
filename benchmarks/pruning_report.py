"""Turns pruning-benchmark results into figures, verdicts and a BENCHMARKS.md section.

Pure functions over the JSON document ``benchmarks/pruning.py`` writes; nothing
here trains or imports TensorFlow, so it is tested on made-up inputs.

A framework's entry in the document reads::

    {"status": "ran" | "not run", "reason": str | None, "versions": {...},
     "runs": {"0": <one seed's result, or {"error": "..."}>, ...}}

and one seed's result has ``dense``, ``plain_finetune`` and ``pruned[<sparsity>]``
as written by ``pruning_kopt.run`` and ``tfmot_pruning_worker.py``.
"""

import math

FRAMEWORKS = ("kopt", "tfmot")
NOT_RUN = "not run"
# The targets.
ACCURACY_DROP_LIMIT_POINTS = 0.5
STEP_TIME_RATIO_LIMIT = 1.10
GZIP_FLOAT_RATIO_LIMIT = 0.35
GZIP_INT8_RATIO_LIMIT = 0.12
SIZE_TARGET_SPARSITY = 0.8


def sparsity_key(sparsity):
    return f"{sparsity:g}"


def seed_metrics(run, sparsities):
    """Flattens one seed's result into ``{metric: value}``; missing figures are absent.

    Accuracies are percentages of the test set scored by the LiteRT interpreter;
    ``drop@S`` is dense minus pruned accuracy in points; size ratios divide by the
    same seed's dense float32 file.
    """
    if not run or "error" in run:
        return {}
    dense = run["dense"]
    metrics = {
        "dense_acc": 100 * dense["tflite_float32_accuracy"],
        "dense_int8_acc": 100 * dense["tflite_int8_accuracy"],
        "dense_gzip_float": dense["tflite_float32_gzip_bytes"],
        "dense_gzip_int8": dense["tflite_int8_gzip_bytes"],
    }
    plain_step = run.get("plain_finetune", {}).get("step_time_s_mean")
    plain_cpu = run.get("plain_finetune", {}).get("step_cpu_s_mean")
    if plain_step:
        metrics["plain_step_ms"] = 1000 * plain_step
    ratios, cpu_ratios = [], []
    for sparsity in sparsities:
        pruned = run.get("pruned", {}).get(sparsity_key(sparsity))
        if not pruned:
            continue
        key = sparsity_key(sparsity)
        metrics[f"acc@{key}"] = 100 * pruned["tflite_float32_accuracy"]
        metrics[f"int8_acc@{key}"] = 100 * pruned["tflite_int8_accuracy"]
        metrics[f"drop@{key}"] = metrics["dense_acc"] - metrics[f"acc@{key}"]
        metrics[f"sparsity@{key}"] = 100 * pruned["sparsity"]
        metrics[f"gzip_float@{key}"] = pruned["tflite_float32_gzip_bytes"]
        metrics[f"gzip_int8@{key}"] = pruned["tflite_int8_gzip_bytes"]
        metrics[f"gzip_float_ratio@{key}"] = pruned["tflite_float32_gzip_bytes"] / dense["tflite_float32_gzip_bytes"]
        metrics[f"gzip_int8_ratio@{key}"] = pruned["tflite_int8_gzip_bytes"] / dense["tflite_float32_gzip_bytes"]
        step = pruned.get("step_time_s_mean")
        if step and plain_step:
            metrics[f"step_ms@{key}"] = 1000 * step
            metrics[f"step_ratio@{key}"] = step / plain_step
            ratios.append(step / plain_step)
        cpu = pruned.get("step_cpu_s_mean")
        if cpu and plain_cpu:
            metrics[f"cpu_ratio@{key}"] = cpu / plain_cpu
            cpu_ratios.append(cpu / plain_cpu)
    if ratios:
        metrics["step_ratio"] = sum(ratios) / len(ratios)
    if cpu_ratios:
        metrics["cpu_ratio"] = sum(cpu_ratios) / len(cpu_ratios)
    return metrics


def summarize(framework_entry, sparsities):
    """Returns ``{"seeds": {seed: metrics}, "mean": metrics}`` for one framework.

    A metric's mean is taken over the seeds that have it.
    """
    return summarize_runs(framework_entry, lambda run: seed_metrics(run, sparsities))


def summarize_runs(framework_entry, metrics_of):
    """As :func:`summarize`, with ``metrics_of(run) -> {metric: value}`` per seed.

    Shared by the benchmarks: each brings its own per-seed metrics.
    """
    per_seed = {seed: metrics_of(run) for seed, run in (framework_entry.get("runs") or {}).items()}
    keys = sorted({key for metrics in per_seed.values() for key in metrics})
    mean = {}
    for key in keys:
        values = [metrics[key] for metrics in per_seed.values() if key in metrics]
        mean[key] = sum(values) / len(values)
    return {"seeds": per_seed, "mean": mean}


def targets(sparsities):
    """The issue's targets as ``(label, metric key, limit, unit)`` tuples."""
    rows = [
        (
            f"Accuracy at {s:.0%} sparsity within {ACCURACY_DROP_LIMIT_POINTS} points of dense (dense - pruned)",
            f"drop@{sparsity_key(s)}",
            ACCURACY_DROP_LIMIT_POINTS,
            "points",
        )
        for s in sparsities
    ]
    rows.append(
        (
            "Training step time with pruning / plain training (mean over sparsities)",
            "step_ratio",
            STEP_TIME_RATIO_LIMIT,
            "x",
        )
    )
    key = sparsity_key(SIZE_TARGET_SPARSITY)
    rows.append(
        (
            f"Gzipped float TFLite at {SIZE_TARGET_SPARSITY:.0%} / dense",
            f"gzip_float_ratio@{key}",
            GZIP_FLOAT_RATIO_LIMIT,
            "x",
        )
    )
    rows.append(
        (
            f"Gzipped int8 TFLite at {SIZE_TARGET_SPARSITY:.0%} / dense float",
            f"gzip_int8_ratio@{key}",
            GZIP_INT8_RATIO_LIMIT,
            "x",
        )
    )
    return rows


def verdict(value, limit, *, at_least=False):
    """``"PASS"`` if ``value <= limit``, ``"FAIL"`` if above, ``"not run"`` if missing.

    With ``at_least=True`` the target is ``value >= limit`` instead.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_RUN
    # Figures such as 100 * 0.980 - 100 * 0.977 carry float error; a measured value
    # on the limit must not fail by it.
    slack = 1e-9 * max(1.0, abs(limit))
    passed = value >= limit - slack if at_least else value <= limit + slack
    return "PASS" if passed else "FAIL"


def judge(summaries, sparsities):
    """Returns one dict per target with each framework's measured mean and verdict."""
    return judge_targets(summaries, targets(sparsities))


def judge_targets(summaries, rows):
    """Judges ``(label, metric, limit, unit[, at_least])`` rows on each framework's mean.

    A row whose ``limit`` is ``None`` is a reference figure: measured, not judged.
    """
    judged = []
    for label, key, limit, unit, *rest in rows:
        at_least = bool(rest and rest[0])
        row = {"target": label, "metric": key, "limit": limit, "unit": unit, "at_least": at_least}
        for framework in FRAMEWORKS:
            summary = summaries.get(framework)
            value = summary["mean"].get(key) if summary else None
            judgement = "reference" if limit is None and value is not None else verdict(value, limit, at_least=at_least)
            row[framework] = {"measured": value, "verdict": judgement}
        judged.append(row)
    return judged


def target_table(judged):
    """Markdown lines of the targets table: target, limit, then each framework's mean and verdict."""
    rows = []
    for row in judged:
        if row["limit"] is None:
            limit = "reference"
        else:
            limit = f"{'>=' if row.get('at_least') else '<='} {row['limit']:g} {row['unit']}".rstrip()
        cells = [row["target"], limit]
        for framework in FRAMEWORKS:
            measured = row[framework]["measured"]
            digits = 3 if row["unit"] == "x" else 2
            cells.append(NOT_RUN if measured is None else f"{measured:.{digits}f} {row[framework]['verdict']}")
        rows.append(cells)
    return table(["target", "limit", *FRAMEWORKS], rows)


def fmt(value, digits=2):
    return NOT_RUN if value is None else f"{value:.{digits}f}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def metric_table(document, summaries, columns):
    """Per-seed rows and a mean row per framework.

    ``columns`` are ``(title, key, digits)``; ``digits`` may instead be a function
    ``value -> str`` (``value`` is ``None`` when missing) for cells that say more
    than the number, such as a verdict.
    """
    renderers = [digits if callable(digits) else _fixed(digits) for _, _, digits in columns]

    def cells(metrics):
        return [render(metrics.get(key)) for render, (_, key, _) in zip(renderers, columns)]

    rows = []
    for framework in FRAMEWORKS:
        entry = document["frameworks"].get(framework, {})
        if entry.get("status") != "ran":
            rows.append([framework, NOT_RUN] + [NOT_RUN] * len(columns))
            continue
        summary = summaries[framework]
        for seed, metrics in summary["seeds"].items():
            label = seed if metrics else f"{seed} ({NOT_RUN}: {entry['runs'][seed].get('error', '')[:80]})"
            rows.append([framework, label] + cells(metrics))
        rows.append([f"**{framework}**", "**mean**"] + cells(summary["mean"]))
    return table(["framework", "seed"] + [title for title, _, _ in columns], rows)


def _fixed(digits):
    return lambda value: fmt(value, digits)


def run_lines(document, title):
    """The opening of a benchmark section: title, command, when, data, machine, versions."""
    lines = [f"## {title}", ""]
    if document.get("quick"):
        lines += ["**Quick smoke run: reduced data and epochs; not the benchmark's figures.**", ""]
    lines += [
        f"Command (from the repository root): `{document['command']}`",
        "",
        (
            f"Run on {document['started_utc']} UTC, {document['wall_time_s'] / 60:.1f} minutes; "
            f"seeds {', '.join(str(s) for s in document['seeds'])}; "
            f"data `{document['data']}` ({document['data_summary']})."
        ),
        "",
        f"Machine: {document['machine_line']}.",
    ]
    for framework in FRAMEWORKS:
        entry = document["frameworks"].get(framework, {})
        if entry.get("status") == "ran":
            versions = ", ".join(f"{name} {version}" for name, version in entry.get("versions", {}).items())
            lines.append(f"- {framework}: {versions}")
        else:
            lines.append(f"- {framework}: {NOT_RUN} ({entry.get('reason') or 'no reason recorded'})")
    return lines


def render_section(document, summaries, judged):
    """The markdown of the pruning section (without its markers)."""
    sparsities = document["settings"]["sparsities"]
    keys = [sparsity_key(s) for s in sparsities]
    pct = [f"{s:.0%}" for s in sparsities]
    lines = run_lines(document, "Pruning: kopt and tfmot side by side")
    lines += [
        "",
        'Settings, the same for both sides (model, data and epochs of tfmot\'s "Pruning in Keras example"; '
        "layers, schedule end, mask frequency and batch chosen on the validation split, see "
        "`benchmarks/pruning_settings.py`):",
        "",
    ]
    lines += [f"- {line}" for line in document["settings_description"]]
    lines += [
        "",
        "### Targets (issue 3), judged on the mean over seeds",
        "",
        (
            "Accuracy is that of the float32 .tflite file in the LiteRT interpreter on the whole "
            "test set; the step-time ratio is pruned over plain fine-tuning, measured in the same process."
        ),
        "",
    ]
    lines += target_table(judged)
    lines += ["", "### Test accuracy, float32 TFLite in the LiteRT interpreter (%)", ""]
    lines += metric_table(
        document,
        summaries,
        [("dense", "dense_acc", 2)]
        + [(p, f"acc@{k}", 2) for p, k in zip(pct, keys)]
        + [(f"drop {p} (points)", f"drop@{k}", 2) for p, k in zip(pct, keys)],
    )
    lines += ["", "### Test accuracy, int8 TFLite (%), and kernel sparsity after strip (%)", ""]
    lines += metric_table(
        document,
        summaries,
        [("int8 dense", "dense_int8_acc", 2)]
        + [(f"int8 {p}", f"int8_acc@{k}", 2) for p, k in zip(pct, keys)]
        + [(f"sparsity {p}", f"sparsity@{k}", 2) for p, k in zip(pct, keys)],
    )
    lines += [
        "",
        "### Training step time (wall ms per step) and pruned / plain ratio",
        "",
        (
            "The last column divides process CPU time per step instead of wall time: it is not the "
            "target's measure, but it moves less when other work shares the machine."
        ),
        "",
    ]
    lines += metric_table(
        document,
        summaries,
        [("plain", "plain_step_ms", 2)]
        + [(p, f"step_ms@{k}", 2) for p, k in zip(pct, keys)]
        + [(f"ratio {p}", f"step_ratio@{k}", 3) for p, k in zip(pct, keys)]
        + [("ratio mean", "step_ratio", 3), ("CPU-time ratio mean", "cpu_ratio", 3)],
    )
    lines += ["", "### Gzipped TFLite size (bytes) and ratio to the dense float32 file", ""]
    lines += metric_table(
        document,
        summaries,
        [("dense float", "dense_gzip_float", 0), ("dense int8", "dense_gzip_int8", 0)]
        + [(f"float {p}", f"gzip_float@{k}", 0) for p, k in zip(pct, keys)]
        + [(f"int8 {p}", f"gzip_int8@{k}", 0) for p, k in zip(pct, keys)]
        + [(f"float {p} ratio", f"gzip_float_ratio@{k}", 3) for p, k in zip(pct, keys)]
        + [(f"int8 {p} ratio", f"gzip_int8_ratio@{k}", 3) for p, k in zip(pct, keys)],
    )
    if document.get("plot"):
        lines += ["", f"![Pruning: accuracy against sparsity, gzipped sizes]({document['plot']})"]
    return "\n".join(lines) + "\n"
