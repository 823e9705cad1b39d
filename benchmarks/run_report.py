"""The summary of a ``benchmarks/run.py`` run: per-row figures, the side-by-side table, the plot.

Pure functions over the rows of ``run_rows`` (after ``run_measure``); nothing here
trains or imports TensorFlow, so the table is tested on made-up rows.

Per seed, a row's figures are its record's, as percentages, KB and ms, plus two
ratios measured in the same run: the training step over plain training timed in
the same process (``step_ratio``), and the latency over the float baseline's
file of the same framework and seed, timed in the same rounds
(``latency_ratio``; kopt's float file for Keras and distillation rows; where the
baseline has no file of that seed, the mean of its seeds' latencies, as latency
follows the architecture, not the weights). A row's table figure is the mean
over the seeds that have it.
"""

import os
import statistics

from benchmarks import row_shape

COLUMNS = (
    # (title, key, digits)
    ("Keras acc (%)", "keras_accuracy", 2),
    ("TFLite acc (%)", "tflite_accuracy", 2),
    ("agreement (%)", "agreement", 2),
    ("gzip TFLite (KB)", "gzip_kb", 1),
    ("params", "params", 0),
    ("nonzero params", "nonzero_params", 0),
    ("train step (ms)", "step_ms", 2),
    ("step ratio", "step_ratio", 3),
    ("latency (ms)", "latency_ms", 4),
    ("latency ratio", "latency_ratio", 3),
)
NO_FIGURE = "–"


def seed_figures(record, float_latency=None):
    """One seed's table figures from its record; ``float_latency``: the float baseline's, in ms."""
    if "error" in record:
        return {}

    def scaled(key, factor):
        return None if record.get(key) is None else factor * record[key]

    figures = {
        "keras_accuracy": scaled("keras_accuracy", 100),
        "tflite_accuracy": scaled("tflite_accuracy", 100),
        "agreement": scaled("agreement", 100),
        "gzip_kb": scaled("gzip_bytes", 1 / 1000),
        "params": record.get("params"),
        "nonzero_params": record.get("nonzero_params"),
        "step_ms": scaled("step_s", 1000),
        "latency_ms": record.get("latency_ms"),
    }
    if record.get("step_s") and record.get("plain_step_s"):
        figures["step_ratio"] = record["step_s"] / record["plain_step_s"]
    if record.get("latency_ms") is not None and float_latency:
        figures["latency_ratio"] = record["latency_ms"] / float_latency
    return {key: value for key, value in figures.items() if value is not None}


def float_row_for(rows, framework, group="float"):
    """The float baseline a row's latency is divided by: the row of ``group`` (the
    float model's, or the quantization benchmark's own model's) of its framework,
    else kopt's."""
    floats = {row["framework"]: row for row in rows if row["group"] == group and row["status"] == "ran"}
    return floats.get(framework) or floats.get("kopt")


def float_latency(baseline, seed):
    """The baseline's latency for ``seed``, else the mean over its seeds; ``None`` without any."""
    if baseline is None:
        return None
    latencies = {s: record["latency_ms"] for s, record in baseline["seeds"].items() if "latency_ms" in record}
    if seed in latencies:
        return latencies[seed]
    return statistics.fmean(latencies.values()) if latencies else None


def summarize(rows):
    """Adds ``per_seed`` and ``mean`` figures to every row; returns ``rows``."""
    for row in rows:
        baseline = float_row_for(rows, row["framework"], row.get("baseline", "float"))
        per_seed = {}
        for seed, record in row["seeds"].items():
            per_seed[seed] = seed_figures(record, float_latency(baseline, seed))
        row["per_seed"] = per_seed
        row["mean"] = {}
        for _, key, _ in COLUMNS:
            values = [figures[key] for figures in per_seed.values() if key in figures]
            if values:
                row["mean"][key] = statistics.fmean(values)
    return rows


def cell(value, digits):
    if value is None:
        return NO_FIGURE
    return f"{value:,.0f}" if digits == 0 else f"{value:.{digits}f}"


def seeds_cell(row):
    ran = [seed for seed, record in row["seeds"].items() if "error" not in record]
    failed = [seed for seed, record in row["seeds"].items() if "error" in record]
    text = ", ".join(ran)
    return text + (f" ({', '.join(failed)} failed)" if failed else "")


def notes_cell(row):
    notes = [row.get("note") or ""]
    for record in row["seeds"].values():
        if record.get("no_file"):
            notes.append(f"no TFLite file: {record['no_file'][:240]}")
            break
    return "; ".join(note for note in notes if note)


def table_lines(rows):
    """The side-by-side table: one line per row, means over seeds; "not run" rows say why."""
    header = ["technique", "framework", *(title for title, _, _ in COLUMNS), "seeds", "epochs", "command", "notes"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if row["status"] != "ran":
            cells = [row_shape.NOT_RUN] * len(COLUMNS) + [
                "",
                row["epochs"],
                f"`{row['command']}`" if row["command"] else "",
                f"not run: {(row['reason'] or '')[:200]}",
            ]
        else:
            cells = [cell(row["mean"].get(key), digits) for _, key, digits in COLUMNS]
            cells += [seeds_cell(row), row["epochs"], f"`{row['command']}`", notes_cell(row)]
        lines.append("| " + " | ".join([row["technique"], row["framework"], *cells]).replace("\n", " ") + " |")
    return lines


def seed_table_lines(rows):
    """Every seed's figures, for the rows that ran."""
    header = ["technique", "framework", "seed", *(title for title, _, _ in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if row["status"] != "ran":
            continue
        for seed, figures in row["per_seed"].items():
            if "error" in row["seeds"][seed]:
                cells = [f"failed: {row['seeds'][seed]['error'][:120]}"] + [""] * (len(COLUMNS) - 1)
            else:
                cells = [cell(figures.get(key), digits) for _, key, digits in COLUMNS]
            lines.append("| " + " | ".join([row["technique"], row["framework"], seed, *cells]) + " |")
    return lines


def render_section(document):
    """The markdown of the summary section (without its markers)."""
    lines = ["## Summary: every technique side by side", ""]
    if document["quick"]:
        lines += ["**Quick smoke run: reduced data and epochs; not the benchmark's figures.**", ""]
    lines += [
        f"Command (from the repository root): `{document['command']}`",
        "",
        (
            f"Run on {document['started_utc']} UTC, {document['wall_time_s'] / 60:.1f} minutes; "
            f"seeds {', '.join(str(seed) for seed in document['seeds'])} (each row lists those it ran); "
            f"data `{document['data']}`."
        ),
        "",
        f"Machine: {document['machine_line']}.",
    ]
    lines += [f"- {side}: {text}" for side, text in document["versions_lines"].items()]
    lines += [f"- {line}" for line in document["benchmark_lines"]]
    json_name = os.path.splitext(os.path.basename(document.get("plot") or "summary.png"))[0] + ".json"
    lines += ["", HOW_TO_READ[0].format(json=json_name), *HOW_TO_READ[1:], ""]
    lines += table_lines(document["rows"])
    lines += ["", "<details><summary>Every seed</summary>", "", *seed_table_lines(document["rows"]), "", "</details>"]
    if document.get("plot"):
        lines += ["", f"![Summary: accuracy against size, step-time and latency ratios]({document['plot']})"]
    return "\n".join(lines) + "\n"


HOW_TO_READ = (
    "Every figure below was measured by this run and copied from its JSON (`{json}` beside the plot); "
    "each row's own section further down has the details, and its command reruns that row alone. "
    "Means over the seeds listed; every seed is in the table under the main one.",
    "",
    "- Accuracy: top-1 on the whole 10,000-image MNIST test set, of the Keras model and of its `.tflite` file "
    "in the LiteRT interpreter; agreement: share of test images where the two give the same class.",
    "- gzip TFLite: the file gzipped at level 9, in KB (1000 bytes); params and nonzero params: weights and "
    "biases of the file's weight-bearing ops (`tflite_export.inspect`); for a model with no file, Keras' count.",
    "- Train step: median wall time per training step of the row's own stage (the last stage of a "
    "combination); step ratio: over plain training of the same model at the same batch size, timed in "
    "the same process before and after the technique. Post-training rows have no step.",
    "- Latency: median `invoke()` time, LiteRT with XNNPACK, 1 thread, batch 1, every file of the run timed "
    "in one pass, the files taking turns; latency ratio: over the float baseline's file of the same "
    "framework and seed (kopt's for Keras and distillation rows; the mean over its seeds where it has no "
    "file of that seed); the QAT and PTQ rows of a model of their own divide by that model's float row.",
    f'- "{NO_FIGURE}": the technique has no such figure; "{row_shape.NOT_RUN}": it could not run, and says why.',
)


def plot(rows, path):
    """Two panels: TFLite accuracy against gzipped size; step-time and latency ratios. Returns ``path``."""
    from benchmarks import pruning_plot

    plt = pruning_plot.pyplot()
    ran = [row for row in rows if row["status"] == "ran"]
    figure, (size_axis, ratio_axis) = plt.subplots(1, 2, figsize=(15, 0.32 * max(len(ran), 8) + 2))
    colors = {"kopt": "tab:blue", "tfmot": "tab:orange", "keras": "tab:green"}
    # Points carry the row's number, which the ratio panel's labels start with: names would overlap.
    plotted = set()
    for number, row in enumerate(ran, start=1):
        mean = row["mean"]
        if mean.get("gzip_kb") and mean.get("tflite_accuracy") is not None:
            label = None if row["framework"] in plotted else row["framework"]
            plotted.add(row["framework"])
            size_axis.scatter(mean["gzip_kb"], mean["tflite_accuracy"], color=colors[row["framework"]], label=label)
            size_axis.annotate(
                str(number),
                (mean["gzip_kb"], mean["tflite_accuracy"]),
                fontsize=7,
                xytext=(3, 2),
                textcoords="offset points",
            )
    if plotted:
        size_axis.legend(fontsize=7)
    size_axis.set_xscale("log")
    size_axis.set_xlabel("gzipped .tflite (KB, log scale)")
    size_axis.set_ylabel("TFLite test accuracy (%), mean over seeds")
    size_axis.grid(alpha=0.3)
    labels = [f"{number}. {row['framework']}: {row['technique']}" for number, row in enumerate(ran, start=1)]
    positions = range(len(ran))
    for offset, key, name in ((-0.2, "step_ratio", "train step / plain"), (0.2, "latency_ratio", "latency / float")):
        ratio_axis.barh(
            [p + offset for p in positions], [row["mean"].get(key, 0) for row in ran], height=0.4, label=name
        )
    ratio_axis.axvline(1.0, color="grey", linewidth=1)
    ratio_axis.set_yticks(list(positions), labels, fontsize=6)
    ratio_axis.invert_yaxis()
    ratio_axis.set_xlabel("ratio (same run)")
    ratio_axis.legend(fontsize=7)
    return pruning_plot.save_figure(figure, path, "kopt, tfmot and Keras side by side")
