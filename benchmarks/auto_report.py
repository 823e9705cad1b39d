"""Figures, verdicts, markdown and plot of the accuracy-aware compression benchmark."""

import numpy as np

from benchmarks import markdown


def stats(values):
    """Mean, std and max-min of a list of numbers (``None`` entries left out)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "range": None, "n": 0}
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "range": float(np.ptp(values)),
        "n": len(values),
    }


def _ok(runs):
    return {seed: run for seed, run in runs.items() if "error" not in run}


def summarize(runs, settings):
    """Statistics over seeds of every row."""
    ok = _ok(runs)
    summary = {"seeds_ran": len(ok), "float_test": stats([r["float"]["keras_test"] for r in ok.values()])}
    for target in settings.sparsities:
        key = f"{target:g}"
        for kind in ("uniform", "allocated", "random"):
            for metric in ("keras_test", "int8_test", "gzip_bytes"):
                summary[f"{kind}_{key}_{metric}"] = stats([r["pruned"][key][kind][metric] for r in ok.values()])
    for fraction in settings.structured_fractions:
        key = f"{fraction:g}"
        for kind in ("l1", "taylor"):
            for metric in ("before_finetune_test", "keras_test"):
                summary[f"structured_{kind}_{key}_{metric}"] = stats(
                    [r["structured"][key][kind][metric] for r in ok.values()]
                )
    for metric in ("int8_test", "gzip_bytes", "sparsity", "wall_s"):
        summary[f"auto_{metric}"] = stats([r["auto"][metric] for r in ok.values()])
    summary["auto_drop"] = stats([r["float"]["keras_test"] - r["auto"]["int8_test"] for r in ok.values()])
    return summary


def judge(runs, summary, settings):
    """The issue's targets, PASS or FAIL, on what was measured."""
    ok = _ok(runs)
    verdicts = []
    if not ok:
        return [{"target": "benchmark ran", "measured": "no seed finished", "verdict": "FAIL"}]
    for target in settings.sparsities:
        key = f"{target:g}"
        allocated, uniform = summary[f"allocated_{key}_keras_test"], summary[f"uniform_{key}_keras_test"]
        verdicts.append(
            {
                "target": f"at {target:.0%} overall sparsity, sensitivity-allocated test accuracy >= uniform (mean of "
                f"{summary['seeds_ran']} seeds)",
                "measured": f"{allocated['mean']:.2f} (std {allocated['std']:.2f}) vs {uniform['mean']:.2f} "
                f"(std {uniform['std']:.2f})",
                "verdict": "PASS" if allocated["mean"] >= uniform["mean"] else "FAIL",
            }
        )
    drops = {seed: r["float"]["keras_test"] - r["auto"]["int8_test"] for seed, r in ok.items()}
    verdicts.append(
        {
            "target": f"--auto --max_accuracy_drop={settings.max_accuracy_drop:g}: int8 test accuracy within 0.6 points "
            "of float, every seed",
            "measured": "float minus auto int8: "
            + ", ".join(f"seed {s}: {d:+.2f}" for s, d in drops.items())
            + " points",
            "verdict": "PASS" if all(d <= 0.6 for d in drops.values()) else "FAIL",
        }
    )
    key = f"{0.8:g}"
    if key in ok[next(iter(ok))]["pruned"]:
        sizes = {seed: (r["auto"]["gzip_bytes"], r["pruned"][key]["uniform"]["gzip_bytes"]) for seed, r in ok.items()}
        verdicts.append(
            {
                "target": "auto's gzipped int8 file smaller than uniform 80% + int8, every seed",
                "measured": ", ".join(f"seed {s}: {a:,} vs {u:,} B" for s, (a, u) in sizes.items()),
                "verdict": "PASS" if all(a < u for a, u in sizes.values()) else "FAIL",
            }
        )
    return verdicts


def _cell(stat, digits=2):
    return "-" if stat["mean"] is None else f"{stat['mean']:.{digits}f}"


def render_section(document, summary, verdicts, settings):
    """The markdown section of BENCHMARKS.md."""
    runs = _ok(document["runs"])
    lines = markdown.opening_lines(document, "## Accuracy-aware compression: `kopt.auto` (issue 12)")
    lines += [
        "### Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *[f"| {v['target']} | {v['measured']} | {v['verdict']} |" for v in verdicts],
        "",
        "### Same overall sparsity: uniform, sensitivity-allocated, random criterion (test accuracy %, Keras)",
        "",
    ]
    keys = [f"{t:g}" for t in settings.sparsities]
    header = ["seed", "float"] + [f"{kind} {float(k):.0%}" for k in keys for kind in ("uniform", "allocated", "random")]
    lines += ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for seed, run in document["runs"].items():
        if "error" in run:
            lines.append(f"| {seed} | failed: {run['error']} |")
            continue
        cells = [f"{run['float']['keras_test']:.2f}"] + [
            f"{run['pruned'][k][kind]['keras_test']:.2f}" for k in keys for kind in ("uniform", "allocated", "random")
        ]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    for stat in ("mean", "std", "range"):
        cells = [summary["float_test"][stat]] + [
            summary[f"{kind}_{k}_keras_test"][stat] for k in keys for kind in ("uniform", "allocated", "random")
        ]
        label = "max-min" if stat == "range" else stat
        lines.append(f"| {label} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
    lines += ["", "Per-layer sparsities the allocation chose (seed by seed), and the layers it held back:", ""]
    for seed, run in runs.items():
        for k in keys:
            allocation = run["pruned"][k]["allocation"]
            chosen = ", ".join(f"{name} {value:.1%}" for name, value in allocation["sparsities"].items())
            held = "; ".join(f"{h['layer']}: {h['reason']}" for h in allocation["held_back"]) or "none"
            lines.append(f"- seed {seed}, {float(k):.0%}: {chosen}. Held back: {held}.")
    if runs:
        first_seed, first = next(iter(runs.items()))
        table = first["sensitivity"]
        lines += [
            "",
            f"Sensitivity of seed {first_seed} (validation accuracy %, one layer at a time, no retraining; "
            f"{table['seconds']:.1f} s):",
            "",
        ]
        columns = [f"{s:.0%}" for s in table["sparsities"]] + [f"{b}-bit" for b in table["bits"]]
        lines += ["| layer | weights | " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) + 1)]
        for name in table["layers"]:
            values = table["accuracy"][name] + table["quantized_accuracy"][name]
            lines.append(f"| {name} | {table['sizes'][name]} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
        lines.append(f"\nBaseline (nothing compressed): {table['baseline_accuracy']:.2f}%.")
    lines += ["", "### Structured pruning of the Conv2D filters: L1 norm vs first-order Taylor (test accuracy %)", ""]
    fractions = [f"{f:g}" for f in settings.structured_fractions]
    header = ["seed"] + [
        f"{name} {float(f):.0%} {when}" for f in fractions for name in ("L1", "Taylor") for when in ("before", "after")
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for seed, run in runs.items():
        cells = [
            f"{run['structured'][f][kind][metric]:.2f}"
            for f in fractions
            for kind in ("l1", "taylor")
            for metric in ("before_finetune_test", "keras_test")
        ]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    cells = [
        _cell(summary[f"structured_{kind}_{f}_{metric}"])
        for f in fractions
        for kind in ("l1", "taylor")
        for metric in ("before_finetune_test", "keras_test")
    ]
    lines.append("| mean | " + " | ".join(cells) + " |")
    lines += ["", "(before = right after removing the filters; after = fine-tuned as the pruned rows.)", ""]
    lines += [
        f"### `--auto --max_accuracy_drop={settings.max_accuracy_drop:g}` against uniform 80% + int8",
        "",
        "| seed | float test | auto int8 test | below float | auto gzip B | uniform 80% int8 test | "
        "uniform 80% gzip B | auto sparsity | kept step | stop | auto wall s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for seed, run in runs.items():
        found, uniform = run["auto"], run["pruned"].get("0.8", {}).get("uniform", {})
        lines.append(
            f"| {seed} | {run['float']['keras_test']:.2f} | {found['int8_test']:.2f} | "
            f"{run['float']['keras_test'] - found['int8_test']:+.2f} | {found['gzip_bytes']:,} | "
            f"{uniform.get('int8_test', float('nan')):.2f} | {uniform.get('gzip_bytes', 0):,} | "
            f"{found['sparsity']:.3f} | {found['best_step']} | {found['stop_reason']} | {found['wall_s']:.0f} |"
        )
    lines += ["", "Points each auto search tried (validation accuracy of the int8 file, %, and its gzipped size):", ""]
    for seed, run in runs.items():
        tried = "; ".join(
            f"step {p['step']} ({p['sparsity']:.2f}): {p['accuracy']:.2f}%, {p['gzip_bytes']:,} B"
            + ("" if p["within_budget"] else " over budget")
            for p in run["auto"]["pareto"]
        )
        lines.append(
            f"- seed {seed} (float {run['auto']['pareto'][0]['accuracy'] + run['auto']['pareto'][0]['drop']:.2f}%): {tried}."
        )
    lines += ["", f"![auto]({document['plot']})"]
    return "\n".join(lines)


def plot(runs, settings, path):
    """Uniform vs allocated accuracy, the auto fronts, and structured criteria; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    runs = _ok(runs)
    figure, axes = pyplot.subplots(1, 3, figsize=(14, 4))
    if not runs:
        axes[1].text(0.5, 0.5, "no seed finished", ha="center", va="center")
        figure.savefig(path, dpi=100)
        pyplot.close(figure)
        return path
    keys = [f"{t:g}" for t in settings.sparsities]
    for offset, kind in enumerate(("uniform", "allocated", "random")):
        means = [np.mean([r["pruned"][k][kind]["keras_test"] for r in runs.values()]) for k in keys]
        spread = [np.std([r["pruned"][k][kind]["keras_test"] for r in runs.values()]) for k in keys]
        axes[0].bar(np.arange(len(keys)) + 0.27 * (offset - 1), means, 0.27, yerr=spread, label=kind)
    axes[0].set_xticks(range(len(keys)), [f"{float(k):.0%}" for k in keys])
    low = min(
        np.min(
            [
                r["pruned"][k][kind]["keras_test"]
                for r in runs.values()
                for k in keys
                for kind in ("uniform", "allocated", "random")
            ]
        ),
        100,
    )
    axes[0].set_ylim(max(0, low - 3), 100)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_title("Same overall sparsity (mean, std over seeds)")
    axes[0].legend(fontsize=8)
    for seed, run in runs.items():
        points = run["auto"]["pareto"]
        axes[1].plot(
            [p["gzip_bytes"] / 1024 for p in points],
            [p["accuracy"] for p in points],
            marker="o",
            label=f"auto seed {seed}",
        )
        uniform = run["pruned"].get("0.8", {}).get("uniform")
        if uniform:
            axes[1].scatter([uniform["gzip_bytes"] / 1024], [uniform["int8_val"]], marker="x", color="black")
    axes[1].set_xlabel("int8 TFLite gzipped (KiB)")
    axes[1].set_ylabel("validation accuracy of the int8 file (%)")
    axes[1].set_title("Auto search fronts (x: uniform 80% + int8)")
    axes[1].legend(fontsize=8)
    fractions = [f"{f:g}" for f in settings.structured_fractions]
    for offset, kind in enumerate(("l1", "taylor")):
        means = [np.mean([r["structured"][f][kind]["keras_test"] for r in runs.values()]) for f in fractions]
        axes[2].bar(np.arange(len(fractions)) + 0.35 * (offset - 0.5), means, 0.35, label=kind)
    axes[2].set_xticks(range(len(fractions)), [f"{float(f):.0%} filters" for f in fractions])
    axes[2].set_ylim(80, 100)
    axes[2].set_title("Structured: L1 vs Taylor, after fine-tuning")
    axes[2].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
