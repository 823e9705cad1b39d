"""The distillation benchmark's figures: per-seed margins, mean and spread, verdict, markdown, plot."""

from benchmarks import markdown
from benchmarks.core.stats import spread

KINDS = ("teacher", "scratch", "distilled")
# The same Distiller with the teacher's arg-max as labels (distillation="hard"); absent from older runs.
HARD = "hard"


def seed_rows(runs):
    """One row per seed that ran: test and validation accuracy of each model, and the margin."""
    rows = []
    for seed, run in sorted(runs.items(), key=lambda item: int(item[0])):
        if "error" in run:
            rows.append({"seed": int(seed), "error": run["error"]})
            continue
        row = {"seed": int(seed)}
        for kind in KINDS:
            row[f"{kind}_test"] = run[kind]["test_accuracy"]
            row[f"{kind}_val"] = run[kind]["val_accuracy"]
        row["margin_test"] = row["distilled_test"] - row["scratch_test"]
        row["margin_val"] = row["distilled_val"] - row["scratch_val"]
        if HARD in run:
            row["hard_test"] = run[HARD]["test_accuracy"]
            row["hard_val"] = run[HARD]["val_accuracy"]
            row["hard_margin_test"] = row["hard_test"] - row["scratch_test"]
        rows.append(row)
    return rows


def summarize(runs):
    """Mean and spread of every column over the seeds that ran."""
    rows = [row for row in seed_rows(runs) if "error" not in row]
    columns = [key for key in (rows[0] if rows else {}) if key != "seed" and all(key in row for row in rows)]
    return {"seeds_ran": len(rows), **{column: spread([row[column] for row in rows]) for column in columns}}


def judge(summary, params):
    """The issue's targets: student at most 1/10 of the teacher; mean margin above the seed spread.

    The spread is the larger max-min range across seeds of the scratch and the
    distilled student's test accuracy.
    """
    ratio = params["student"] / params["teacher"] if params else None
    verdicts = [
        {
            "target": "student parameters <= 1/10 of the teacher's",
            "measured": f"{params['student']:,} / {params['teacher']:,} = {ratio:.3f}" if params else "not run",
            "verdict": "not run" if ratio is None else ("PASS" if ratio <= 0.1 else "FAIL"),
        }
    ]
    if summary["seeds_ran"] < 2:
        verdicts.append(
            {"target": "mean margin > seed-to-seed spread", "measured": "needs 2+ seeds", "verdict": "not run"}
        )
        return verdicts
    margin = summary["margin_test"]["mean"]
    seed_spread = max(summary["scratch_test"]["range"], summary["distilled_test"]["range"])
    verdicts.append(
        {
            "target": "mean margin (distilled - scratch test accuracy) > seed-to-seed spread (larger max-min of the two)",
            "measured": f"{margin:+.2f} points vs spread {seed_spread:.2f} points",
            "verdict": "PASS" if margin > seed_spread else "FAIL",
        }
    )
    return verdicts


def render_section(document, summary, verdicts):
    """The markdown section of BENCHMARKS.md."""
    lines = markdown.opening_lines(
        document, "## Distillation: a distilled student against the same student from scratch"
    )
    lines += [
        "Accuracy in percent; margin = distilled - scratch, each seed's pair sharing initial weights and order.",
        "The seed-to-seed spread the margin is judged against is the larger of the max-min ranges over seeds",
        "of the scratch and of the distilled test accuracy (the std and the margin's own max-min are shown too).",
        "",
        "| seed | teacher test | scratch test | distilled test | margin test | scratch val | distilled val |"
        " margin val |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in document["rows"]:
        if "error" in row:
            lines.append(f"| {row['seed']} | failed: {row['error']} |||||||")
            continue
        lines.append(
            f"| {row['seed']} | {row['teacher_test']:.2f} | {row['scratch_test']:.2f} | {row['distilled_test']:.2f} | "
            f"{row['margin_test']:+.2f} | {row['scratch_val']:.2f} | {row['distilled_val']:.2f} | "
            f"{row['margin_val']:+.2f} |"
        )
    if summary["seeds_ran"]:
        for stat, label in (("mean", "mean"), ("std", "std"), ("range", "max-min")):
            cells = [summary[f"{kind}_test"][stat] for kind in ("teacher", "scratch", "distilled")]
            cells.append(summary["margin_test"][stat])
            cells += [summary[f"{kind}_val"][stat] for kind in ("scratch", "distilled")]
            cells.append(summary["margin_val"][stat])
            lines.append(f"| {label} | " + " | ".join(f"{value:.2f}" for value in cells) + " |")
    lines += _hard_table(document["rows"], summary)
    lines += ["", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {v['target']} | {v['measured']} | {v['verdict']} |" for v in verdicts]
    lines += ["", f"![distillation]({document['plot']})"]
    return "\n".join(lines)


def _hard_table(rows, summary):
    """Soft against hard distillation (the teacher's arg-max as labels), when the run has both."""
    rows = [row for row in rows if "error" not in row and "hard_test" in row]
    if not rows or "hard_test" not in summary:
        return []
    lines = [
        "",
        'Soft targets against hard distillation (`Distiller(distillation="hard")`: the teacher\'s arg-max as',
        "labels, same student, initial weights, order, epochs and alpha). Test accuracy in percent.",
        "",
        "| seed | scratch | soft | hard | soft - scratch | hard - scratch |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['seed']} | {row['scratch_test']:.2f} | {row['distilled_test']:.2f} | {row['hard_test']:.2f} | "
            f"{row['margin_test']:+.2f} | {row['hard_margin_test']:+.2f} |"
        )
    for stat, label in (("mean", "mean"), ("std", "std"), ("range", "max-min")):
        keys = ("scratch_test", "distilled_test", "hard_test", "margin_test", "hard_margin_test")
        lines.append(f"| {label} | " + " | ".join(f"{summary[key][stat]:.2f}" for key in keys) + " |")
    return lines


def plot(rows, path):
    """Per-seed test accuracy of the scratch and distilled students; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = [row for row in rows if "error" not in row]
    figure, axis = pyplot.subplots(figsize=(6, 3.5))
    seeds = [row["seed"] for row in rows]
    for kind, marker in (("scratch", "o"), ("distilled", "s"), ("hard", "D"), ("teacher", "^")):
        if all(f"{kind}_test" in row for row in rows):
            label = "soft" if kind == "distilled" else kind
            axis.plot(seeds, [row[f"{kind}_test"] for row in rows], marker=marker, linestyle="none", label=label)
    axis.set_xlabel("seed")
    axis.set_ylabel("test accuracy (%)")
    axis.set_xticks(seeds)
    axis.legend()
    axis.set_title("Distilled vs scratch student, per seed")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
