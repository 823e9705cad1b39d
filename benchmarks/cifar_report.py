"""The CIFAR-10 suite's report: rows pooled over seeds, the must-holds of issue 25, a PNG.

Every figure is read from the document ``benchmarks/cifar.py`` writes; each table
cell gives the mean and, in brackets, every seed's value.
"""

from benchmarks.cifar_settings import TECHNIQUES
from benchmarks.cifar_settings import CifarSettings
from benchmarks.core import stats

__all__ = ["SECTION", "checks", "plot", "render", "table"]

SECTION = "cifar"
SIDES = ("kopt", "tfmot")


def _rows(document, side, model, technique):
    """The seeds' rows of one (side, network, technique) that ran, in seed order."""
    runs = document["frameworks"][side]["runs"]
    found = []
    for seed in document["seeds"]:
        row = runs.get(str(seed), {}).get("rows", {}).get(f"{model}/{technique}")
        if row is not None:
            found.append((seed, row))
    return found


def _float_row(runs, seed, model, row=None):
    """The float row a row's drop and ratios are to: its own part's (``float_reference``), else the seed's."""
    if row is not None and row.get("float_reference"):
        return row["float_reference"]
    return runs.get(str(seed), {}).get("rows", {}).get(f"{model}/float32") or {}


def table(document):
    """One dict per (network, technique, side) that has rows: pooled figures and each seed's."""
    out = []
    settings = document["settings"]
    for model in settings["models"]:
        for technique in TECHNIQUES:
            for side in SIDES:
                found = _rows(document, side, model, technique)
                if not found:
                    continue
                runs = document["frameworks"][side]["runs"]
                ok = [(seed, row) for seed, row in found if "tflite_accuracy" in row]
                entry = {"model": model, "technique": technique, "side": side, "seeds": [s for s, _ in ok]}
                entry["errors"] = sorted({row["error"] for _, row in found if "error" in row})
                for field in ("tflite_accuracy", "agreement", "bytes", "gzip_bytes", "channels_removed"):
                    entry[field] = [row.get(field) for _, row in ok]
                # Each row with the float row its drop and ratios are to, looked up once. A part that
                # measured rows again may have no float row of its own: no drop there.
                paired = [(row, _float_row(runs, seed, model, row)) for seed, row in ok]
                entry["drop"] = [
                    100 * (reference["tflite_accuracy"] - row["tflite_accuracy"])
                    for row, reference in paired
                    if "tflite_accuracy" in reference
                ]
                entry["latency_ratio"] = [
                    row["ms"] / reference["ms"] for row, reference in paired if row.get("ms") and reference.get("ms")
                ]
                entry["latency_ratio_noamx"] = [
                    row["ms_noamx"] / reference["ms_noamx"]
                    for row, reference in paired
                    if row.get("ms_noamx") and reference.get("ms_noamx")
                ]
                entry["step_ratio"] = [
                    row["train"]["step_time_s_median"] / reference["train"]["step_time_s_median"]
                    for row, reference in paired
                    if row.get("train") and reference.get("train")
                ]
                out.append(entry)
    return out


def _cell(values, fmt):
    values = [value for value in values if value is not None]
    if not values:
        return ""
    mean = stats.spread(values)["mean"]
    if len(values) == 1:
        return fmt.format(mean)
    return fmt.format(mean) + " (" + "/".join(fmt.format(value) for value in values) + ")"


def checks(document):
    """The issue's must-holds, each ``(statement, met or None when not measured)``."""
    by_key = {(entry["model"], entry["technique"], entry["side"]): entry for entry in table(document)}

    def mean(entry, field):
        values = (entry or {}).get(field) or []
        return stats.spread(values)["mean"] if values else None

    results = []
    qat = by_key.get(("mobilenet_v2", "qat_int8", "kopt"))
    drop = mean(qat, "drop")
    results.append((f"MobileNetV2 QAT int8 within 0.5 points of float: {_fmt(drop, '{:.2f}')} points", _le(drop, 0.5)))
    ratio = mean(qat, "latency_ratio")
    results.append(
        (
            f"MobileNetV2 int8 no slower than float, the fully integer file: ratio {_fmt(ratio, '{:.3f}')} (the file "
            "with a measured float prefix, `plan_float_prefix`: section `float_prefix`)",
            _le(ratio, 1.0),
        )
    )
    if (qat or {}).get("latency_ratio_noamx"):
        ratio = mean(qat, "latency_ratio_noamx")
        statement = "MobileNetV2 int8 no slower than float with Intel AMX refused (XNNPACK as on CPUs without it)"
        results.append((f"{statement}: ratio {ratio:.3f}", ratio <= 1.0))
    # The control: the float model trained as many more epochs. Without it the drop also counts what
    # the fine-tuning epochs add to a float model that is not yet converged.
    control = by_key.get(("mobilenet_v2", "float32_continued", "kopt"))
    continued = dict(zip(control["seeds"], control["tflite_accuracy"], strict=True)) if control else {}

    def structured(technique, statement):
        entry = by_key.get(("mobilenet_v2", technique, "kopt"))
        if entry is None and technique != "structured_50":
            return
        speed = 1 / mean(entry, "latency_ratio") if mean(entry, "latency_ratio") else None
        drop = mean(entry, "drop")
        pairs = zip((entry or {}).get("seeds", []), (entry or {}).get("tflite_accuracy", []), strict=True)
        gaps = [100 * (continued[seed] - accuracy) for seed, accuracy in pairs if seed in continued]
        judged = stats.spread(gaps)["mean"] if gaps else drop
        met = None if speed is None or judged is None else speed >= 1.7 and judged <= 1.0
        results.append(
            (
                f"{statement} >= 1.7x faster at <= 1 point: {_fmt(speed, '{:.2f}')}x, "
                f"{_fmt(drop, '{:.2f}')} points below the float model"
                + (
                    f", {judged:.2f} below it trained as many more epochs (float32_continued, seeds "
                    f"{sorted(set(continued) & set(entry['seeds']))})"
                    if gaps
                    else " (no float32_continued control row)"
                ),
                met,
            )
        )

    structured("structured_50", "MobileNetV2 50% of channels" + _scratch_note(by_key, continued, mean))
    latency_plan = by_key.get(("mobilenet_v2", "structured_latency", "kopt")) or {}
    removed = [share for share in latency_plan.get("channels_removed", []) if share is not None]
    structured(
        "structured_latency",
        "MobileNetV2 latency-aware channel plan (`latency_channel_plan`"
        + (f", {_fmt(100 * stats.spread(removed)['mean'], '{:.0f}')}% of channels" if removed else "")
        + "; not the 50% the must-hold names)",
    )
    behind = []
    compared = 0
    for (model, technique, side), entry in by_key.items():
        other = by_key.get((model, technique, "tfmot"))
        if side != "kopt" or not other or not entry["tflite_accuracy"] or not other["tflite_accuracy"]:
            continue
        compared += 1
        accuracy_gap = 100 * (mean(other, "tflite_accuracy") - mean(entry, "tflite_accuracy"))
        size_ratio = mean(entry, "gzip_bytes") / mean(other, "gzip_bytes")
        # Level: within one point (seeds differ by about that) and no more than 2% larger.
        if accuracy_gap > 1.0 or size_ratio > 1.02:
            behind.append(f"{model} {technique} ({accuracy_gap:+.2f} points behind, gzip x{size_ratio:.3f})")
    results.append(
        (
            f"Each kopt row level with tfmot's on accuracy (within 1 point) and gzip size (within 2%): "
            f"{compared} compared" + (f"; behind: {', '.join(behind)}" if behind else ""),
            None if not compared else not behind,
        )
    )
    for model in document["settings"]["models"]:
        kopt_steps = mean(by_key.get((model, "qat_int8", "kopt")), "step_ratio")
        tfmot_steps = mean(by_key.get((model, "qat_int8", "tfmot")), "step_ratio")
        met = None if kopt_steps is None or tfmot_steps is None else kopt_steps < tfmot_steps
        results.append(
            (
                f"{model}: kopt's QAT step ratio below tfmot's: {_fmt(kopt_steps, '{:.2f}')}x against "
                f"{_fmt(tfmot_steps, '{:.2f}')}x",
                met,
            )
        )
    return results


def _scratch_note(by_key, continued, mean):
    """What the 50% architecture reaches trained from scratch for the whole budget, against the control."""
    scratch = by_key.get(("mobilenet_v2", "structured_50_scratch", "kopt"))
    if not scratch or not scratch["seeds"]:
        return ""
    pairs = zip(scratch["seeds"], scratch["tflite_accuracy"], strict=True)
    gaps = [100 * (continued[seed] - accuracy) for seed, accuracy in pairs if seed in continued]
    behind = f", {stats.spread(gaps)['mean']:.2f} points below the control" if gaps else ""
    return (
        f" (its architecture trained from scratch for the whole budget, `structured_50_scratch`: "
        f"{100 * mean(scratch, 'tflite_accuracy'):.2f}%{behind}, seeds {scratch['seeds']})"
    )


def _fmt(value, fmt):
    return "n/a" if value is None else fmt.format(value)


def _le(value, bound):
    return None if value is None else value <= bound


def render(document, settings):
    """The markdown section."""
    title = "## Real architectures on CIFAR-10: kopt and tfmot side by side (issue 25)"
    if settings is not None and settings.float_epochs != CifarSettings.float_epochs:
        title = f"## Real architectures on CIFAR-10, float models trained {settings.float_epochs} epochs (issue 25)"
    lines = [title, ""]
    if document["quick"]:
        lines += ["**Quick smoke run: too short to judge; the targets below are not meaningful.**", ""]
    seeds = ", ".join(str(seed) for seed in document["seeds"])
    parts = document.get("parts")
    if parts:
        lines.append(
            f"Written in {len(parts)} parts ({document['wall_time_s'] / 60:.1f} min in all), pooled by "
            "`python -m benchmarks.cifar_merge` from their JSON documents:"
        )
        lines += [
            "",
            *(
                f"- `{part['command']}` (seeds {part['seeds']}; {part['machine_line']})"
                + (f"; its AMX-refused latency by `{part['noamx_command']}`" if part.get("noamx_command") else "")
                + (
                    f"; its latency, both passes, timed again on a quiet machine by `{part['retime_command']}`"
                    if part.get("retime_command")
                    else ""
                )
                for part in parts
            ),
        ]
        for replaced in document.get("replaced", []):
            lines.append(
                f"- Row {replaced['row']} ({replaced['side']}, seed {replaced['seed']}) is the one measured again "
                f"by `{replaced['command']}`, which replaces the earlier part's; "
                + (
                    "its drop and ratios are to that part's own float row, timed in the same pass."
                    if replaced.get("own_float")
                    else "its latency and step ratios are to the float row of another process."
                )
            )
        for added in document.get("added", []):
            lines.append(
                f"- Row {added['row']} ({added['side']}, seed {added['seed']}) comes from `{added['command']}`"
                + (
                    ", which trained and timed the seed's float model again: its drop and ratios are to that float "
                    "row, timed in the same pass."
                    if added.get("own_float")
                    else ", which has no float row of its own: its latency and step ratios are to the float row of "
                    "another process."
                )
            )
        lines += ["", f"Data: {document['data_summary']} (`{document['data']}`). Seeds: {seeds}."]
    else:
        lines.append(
            f"Written by `{document['command']}` in {document['wall_time_s'] / 60:.1f} min on "
            f"{document['machine_line']}. Data: {document['data_summary']} (`{document['data']}`). Seeds: {seeds}."
        )
    lines += [
        "",
        settings.describe(),
        "",
        "Each cell: the mean, and in brackets every seed's value. Accuracy: the `.tflite` file on the test "
        "images in LiteRT. Drop: float file's accuracy minus the row's, seed by seed, in points. Agreement: "
        "the file's top-1 against its own Keras model's. Latency: LiteRT, XNNPACK, 1 thread, batch 1, every "
        "file of a seed and network (both sides) timed in one interleaved pass; ratio to the same side's "
        "float file (below 1: faster). Step: the row's median training step over the float training's "
        "(the first stage for chained rows).",
        "",
    ]
    entries = table(document)
    amx = any(entry["latency_ratio_noamx"] for entry in entries)
    if amx:
        lines[-1:] = [
            "",
            "This CPU has Intel AMX, on which XNNPACK runs int8 convolutions; *AMX refused*: every file of a "
            "seed and network timed again, in turns, in a process that `tflite_export.refuse_amx()` keeps off "
            "AMX, as XNNPACK runs on CPUs without it (phones, AMD), each ratio to that pass's float file. "
            "Float files do not use AMX.",
            "",
        ]
    for side in SIDES:
        framework = document["frameworks"][side]
        if framework["status"] != "ran":
            lines.append(f"{side}: not run ({framework['reason']}).")
    lines += [
        "",
        "| network | technique | side | accuracy % | drop, points | agreement % | KiB | gzip KiB "
        "| latency ratio |" + (" latency ratio, AMX refused |" if amx else "") + " step ratio |",
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if amx else ""),
    ]
    for entry in entries:
        if entry["errors"] and not entry["seeds"]:
            lines.append(
                f"| {entry['model']} | {entry['technique']} | {entry['side']} | failed: "
                f"{entry['errors'][0][:120]} | | | | | | |" + (" |" if amx else "")
            )
            continue
        lines.append(
            f"| {entry['model']} | {entry['technique']} | {entry['side']} "
            f"| {_cell([100 * v for v in entry['tflite_accuracy']], '{:.2f}')} "
            f"| {_cell(entry['drop'], '{:.2f}')} "
            f"| {_cell([100 * v for v in entry['agreement'] if v is not None], '{:.1f}')} "
            f"| {_cell([v / 1024 for v in entry['bytes']], '{:.0f}')} "
            f"| {_cell([v / 1024 for v in entry['gzip_bytes']], '{:.0f}')} "
            f"| {_cell(entry['latency_ratio'], '{:.3f}')} "
            + (f"| {_cell(entry['latency_ratio_noamx'], '{:.3f}')} " if amx else "")
            + f"| {_cell(entry['step_ratio'], '{:.2f}')} |"
        )
    lines += ["", "Issue 25's must-holds on these figures:", ""]
    for statement, met in checks(document):
        verdict = "not measured" if met is None else ("met" if met else "**not met**")
        lines.append(f"- {statement}: {verdict}.")
    if document.get("plot"):
        lines += ["", f"![CIFAR-10 rows]({document['plot']})"]
    return "\n".join(lines) + "\n"


def plot(document, settings, path):
    """Accuracy and latency ratio per technique, kopt and tfmot side by side, one row of panels per network."""
    del settings
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    entries = table(document)
    models = [model for model in document["settings"]["models"] if any(e["model"] == model for e in entries)]
    figure, axes = plt.subplots(max(len(models), 1), 2, figsize=(13, 4 * max(len(models), 1)), squeeze=False)
    for row_axes, model in zip(axes, models, strict=False):
        techniques = [t for t in TECHNIQUES if any(e["model"] == model and e["technique"] == t for e in entries)]
        for offset, side in ((-0.2, "kopt"), (0.2, "tfmot")):
            accuracy, ratio = [], []
            for technique in techniques:
                entry = next(
                    (e for e in entries if (e["model"], e["technique"], e["side"]) == (model, technique, side)), None
                )
                accuracy.append(100 * stats.spread(entry["tflite_accuracy"])["mean"] if entry and entry["seeds"] else 0)
                ratio.append(stats.spread(entry["latency_ratio"])["mean"] if entry and entry["latency_ratio"] else 0)
            positions = [index + offset for index in range(len(techniques))]
            row_axes[0].bar(positions, accuracy, width=0.4, label=side)
            row_axes[1].bar(positions, ratio, width=0.4, label=side)
        for axis, label in zip(row_axes, ("TFLite accuracy, %", "latency / float file"), strict=True):
            axis.set_xticks(range(len(techniques)), techniques, rotation=45, ha="right")
            axis.set_ylabel(label)
            axis.set_title(model)
            axis.legend()
        row_axes[1].axhline(1.0, color="grey", linewidth=0.8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
