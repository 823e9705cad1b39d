"""The extras benchmark's figures: one flat row per framework, seed and technique; markdown; plot.

Pure functions over the ``frameworks`` entry ``benchmarks/extras.py`` builds (the
form of ``pruning_report``); nothing here trains or imports TensorFlow.
"""

import statistics

from benchmarks import pruning_report

ROW_LABELS = {
    "float32": "float baseline",
    "m_by_n_2_4": "2:4 pruning",
    "structured": "structured pruning",
    "keras_int8": 'Keras `model.quantize("int8")`',
    "cluster": "clustering",
    "prune_cluster": "pruning + clustering",
    "cluster_cqat_int8": "clustering + CQAT int8",
    "prune_cluster_pcqat_int8": "pruning + clustering + PCQAT int8",
}
COLUMNS = (
    ("Keras acc (%)", "keras_accuracy", 2),
    ("TFLite acc (%)", "tflite_accuracy", 2),
    ("agreement (%)", "agreement", 2),
    ("gzip bytes", "gzip_bytes", 0),
    ("params", "params", 0),
    ("step (ms)", "step_ms", 2),
    ("step ratio", "step_ratio", 3),
)


def _percent(value):
    return None if value is None else 100 * value


def cell(value, digits):
    """A figure with ``digits`` decimals; "–" where the technique has no such figure."""
    return "–" if value is None else f"{value:,.{digits}f}" if digits == 0 else f"{value:.{digits}f}"


def row_metrics(name, row, plain):
    """One technique's figures for one seed: percentages, bytes, step time and ratio, notes."""
    score = row.get("score", {})
    plain_step = (plain or {}).get("step_time_s_median")
    # The float row's training step is the plain fine-tune: the reference itself.
    step = plain_step if name == "float32" else (row.get("steps") or {}).get("step_time_s_median")
    return {
        "row": name,
        "keras_accuracy": _percent(score.get("keras_accuracy")),
        "tflite_accuracy": _percent(score.get("accuracy")),
        "agreement": _percent(score.get("agreement")),
        "gzip_bytes": score.get("gzip_bytes"),
        "params": score.get("params", row.get("params")),
        "step_ms": None if step is None else 1000 * step,
        "step_ratio": step / plain_step if step and plain_step else None,
        "notes": notes(name, row),
    }


def notes(name, row):
    """What the row's own checks found, in a few words."""
    score = row.get("score", {})
    if name == "float32":
        return "step: the plain fine-tune (the reference)"
    if name == "m_by_n_2_4" and "m_by_n_ok" in score:
        return "2:4 pattern in the file: " + ("yes" if score["m_by_n_ok"] else "NO")
    if name in ("cluster", "prune_cluster", "cluster_cqat_int8", "prune_cluster_pcqat_int8") and score:
        return (
            f"<= {score['max_unique_weights']} distinct values per weight tensor, {score['weight_sparsity']:.0%} zeros"
        )
    if name == "keras_int8":
        text = f"int8: {', '.join(row.get('quantized_layers', [])) or 'none'}; float: " + (
            ", ".join(row.get("float_layers", [])) or "none"
        )
        return text + ("" if row.get("file") else "; no TFLite file (see below)")
    return ""


def seed_rows(frameworks):
    """Flat rows, framework by framework, seed by seed; a failed seed is one row with its ``error``."""
    rows = []
    for framework in pruning_report.FRAMEWORKS:
        for seed, run in (frameworks.get(framework, {}).get("runs") or {}).items():
            if "error" in run:
                rows.append({"framework": framework, "seed": seed, "error": run["error"]})
                continue
            for name, row in run["rows"].items():
                metrics = row_metrics(name, row, run.get("plain_finetune"))
                rows.append({"framework": framework, "seed": seed, **metrics})
    return rows


def means(rows):
    """Per ``(framework, row)``: the mean of each column over the seeds that have it."""
    grouped = {}
    for row in rows:
        if "error" not in row:
            grouped.setdefault((row["framework"], row["row"]), []).append(row)
    result = {}
    for key, group in grouped.items():
        result[key] = {}
        for _, column, _ in COLUMNS:
            values = [row[column] for row in group if row[column] is not None]
            result[key][column] = statistics.fmean(values) if values else None
    return result


def render_section(document):
    """The markdown of the extras section (without its markers)."""
    title = "More techniques: 2:4 and structured pruning, Keras int8, tfmot clustering"
    lines = pruning_report.run_lines(document, title)
    lines += ["", "Settings:", ""]
    lines += [f"- {line}" for line in document["settings_description"]]
    lines += [
        "",
        (
            "Accuracy on the whole test set: Keras model and its float32 (or, for CQAT/PCQAT, int8) .tflite file; "
            "agreement: share of test images where both give the same class. Step: median wall time per "
            "training step of the row's own stage (the last stage of a combination); ratio: over the plain "
            'fine-tune of the float model, same batch size, same process. "–": the technique has no such '
            "figure. Latency: see the summary section."
        ),
        "",
    ]
    header = ["framework", "seed", "technique", *(title for title, _, _ in COLUMNS), "notes"]
    table = []
    for row in document["rows"]:
        if "error" in row:
            table.append(
                [row["framework"], row["seed"], f"{pruning_report.NOT_RUN}: {row['error'][:120]}"]
                + [""] * (len(COLUMNS) + 1)
            )
            continue
        cells = [cell(row[column], digits) for _, column, digits in COLUMNS]
        table.append([row["framework"], row["seed"], ROW_LABELS.get(row["row"], row["row"]), *cells, row["notes"]])
    for (framework, name), values in means(document["rows"]).items():
        cells = [cell(values[column], digits) for _, column, digits in COLUMNS]
        table.append([f"**{framework}**", "**mean**", ROW_LABELS.get(name, name), *cells, ""])
    for framework in pruning_report.FRAMEWORKS:
        entry = document["frameworks"].get(framework, {})
        if entry.get("status") != "ran":
            table.append([framework, pruning_report.NOT_RUN, entry.get("reason") or ""] + [""] * (len(COLUMNS) + 1))
    lines += pruning_report.table(header, table)
    lines += keras_int8_lines(document["frameworks"].get("kopt", {}))
    if document.get("plot"):
        lines += ["", f"![Extras: accuracy against gzipped size]({document['plot']})"]
    return "\n".join(lines) + "\n"


def keras_int8_lines(kopt_entry):
    """What Keras' ``model.quantize("int8")`` did, from the first seed that ran it."""
    for run in (kopt_entry.get("runs") or {}).values():
        row = (run.get("rows") or {}).get("keras_int8")
        if not row:
            continue
        lines = [
            "",
            '### Keras `model.quantize("int8")`',
            "",
            (
                f"Quantized to int8 (weights per output channel, inputs at run time): "
                f"{', '.join(row['quantized_layers']) or 'none'}; "
                f"stayed float: {', '.join(row['float_layers']) or 'none'}. "
                f"Weights {row['weight_bytes_float']:,} -> {row['weight_bytes_int8']:,} bytes in memory; "
                f"{row['params']:,} parameters including the scales."
            ),
        ]
        errors = row.get("file_errors") or {}
        if row.get("file"):
            exporter = next(name for name, error in errors.items() if error is None)
            lines.append(f"TFLite file written by `{exporter}`.")
        else:
            lines.append(
                "No TFLite file: "
                + "; ".join(f"`{name}`: {error}" for name, error in errors.items())
                + '. Its TFLite cells read "no file"; the Keras figures are measured.'
            )
        return lines
    return []


def plot(rows, path):
    """TFLite accuracy against gzipped size, one point per framework, technique and seed; returns ``path``."""
    from benchmarks import pruning_plot

    plt = pruning_plot.pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.8))
    markers = {"kopt": "o", "tfmot": "s"}
    points = [row for row in rows if "error" not in row and row["gzip_bytes"] and row["tflite_accuracy"] is not None]
    for framework, name in sorted({(row["framework"], row["row"]) for row in points}):
        chosen = [row for row in points if (row["framework"], row["row"]) == (framework, name)]
        axis.scatter(
            [row["gzip_bytes"] / 1024 for row in chosen],
            [row["tflite_accuracy"] for row in chosen],
            marker=markers.get(framework, "x"),
            label=f"{framework} {ROW_LABELS.get(name, name)}",
        )
    axis.set_xscale("log")
    axis.set_xlabel("gzipped .tflite (KiB, log scale)")
    axis.set_ylabel("TFLite test accuracy (%)")
    axis.grid(alpha=0.3)
    if points:
        axis.legend(fontsize=7)
    return pruning_plot.save_figure(figure, path, "Extras: accuracy against gzipped size")
