"""Schedules benchmark: 80% pruning fine-tuned at a constant rate against cosine and plateau.

For every seed it trains kopt's ``small_cnn`` once, then fine-tunes a copy per
learning-rate schedule with the pipeline's ``prune`` stage (see
``schedules_settings.py``). It reports every seed's test accuracy, the mean and
spread per schedule, and judges whether a decaying schedule beats the constant
rate by more than the seed-to-seed spread.

Writes ``<output_dir>/schedules.json`` and rewrites the section between
``<!-- schedules:begin -->`` and ``<!-- schedules:end -->`` of BENCHMARKS.md.
From the repository root::

    python -m benchmarks.schedules                     # 3 seeds, the benchmark's figures
    python -m benchmarks.schedules --quick --seeds=0   # smoke run
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import harness  # noqa: E402
from benchmarks import suite  # noqa: E402
from benchmarks.core.stats import spread  # noqa: E402
from benchmarks.schedules_settings import SchedulesSettings  # noqa: E402

__all__ = ["QUICK_SEEDS", "SUITE", "judge", "main", "render_section", "run_benchmark", "summarize"]

SECTION = "schedules"
QUICK_SEEDS = 2
flags.adopt_module_key_flags(harness)


def summarize(runs, schedules):
    """Mean, sample std and max-min of every schedule's test accuracy and margin over constant."""
    ran = [run for run in runs.values() if "error" not in run]
    summary = {"float": spread([run["float"]["test_accuracy"] for run in ran], sample_std=True)}
    for schedule in schedules:
        summary[schedule] = spread([run[schedule]["test_accuracy"] for run in ran], sample_std=True)
        summary[f"{schedule}_margin"] = spread(
            [run[schedule]["test_accuracy"] - run["constant"]["test_accuracy"] for run in ran], sample_std=True
        )
    return summary


def judge(summary, schedules):
    """PASS when the best decaying schedule's mean margin over constant exceeds the seeds' spread."""
    verdicts = []
    for schedule in schedules:
        if schedule == "constant":
            continue
        margin = summary[f"{schedule}_margin"]["mean"]
        noise = max(summary["constant"]["range"], summary[schedule]["range"])
        verdicts.append(
            {
                "target": f"{schedule} beats constant by more than the seed-to-seed spread (larger max-min)",
                "measured": f"mean margin {margin:+.2f} points, spread {noise:.2f}",
                "passed": margin > noise,
            }
        )
    return verdicts


def render_section(document, summary, verdicts, schedules):
    settings = document["settings_description"]
    lines = ["## Learning-rate schedules for fine-tuning after pruning", ""]
    lines += [f"Command: `{document['command']}`. {document['machine_line']}", ""]
    lines += settings + [""]
    header = (
        "| seed | float | "
        + " | ".join(schedules)
        + " | "
        + " | ".join(f"{s} - constant" for s in schedules if s != "constant")
        + " |"
    )
    lines += [
        "Test accuracy in percent of the stripped 80%-sparse model (float: before pruning).",
        "",
        header,
        "|" + "---|" * (2 + len(schedules) + len(schedules) - 1),
    ]
    for seed, run in document["runs"].items():
        if "error" in run:
            lines.append(f"| {seed} | error: {run['error']} |")
            continue
        cells = [f"{run['float']['test_accuracy']:.2f}"] + [f"{run[s]['test_accuracy']:.2f}" for s in schedules]
        cells += [
            f"{run[s]['test_accuracy'] - run['constant']['test_accuracy']:+.2f}" for s in schedules if s != "constant"
        ]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    for stat in ("mean", "std", "range"):
        cells = [f"{summary['float'][stat]:.2f}"] + [f"{summary[s][stat]:.2f}" for s in schedules]
        cells += [f"{summary[f'{s}_margin'][stat]:+.2f}" for s in schedules if s != "constant"]
        lines.append(f"| {stat} | " + " | ".join(cells) + " |")
    sparsities = sorted(
        {round(run[s]["sparsity"], 3) for run in document["runs"].values() if "error" not in run for s in schedules}
    )
    lines += ["", f"Kernel sparsity of every pruned model: {', '.join(f'{v:.3f}' for v in sparsities)}.", ""]
    for verdict in verdicts:
        lines.append(f"- {'PASS' if verdict['passed'] else 'FAIL'}: {verdict['target']}: {verdict['measured']}.")
    return "\n".join(lines)


def measure(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s):
    """Runs every seed (``schedules_run.run``); returns ``runs``, ``summary`` and ``verdicts``.

    kopt only: ``tfmot`` and ``tfmot_timeout_s`` are not read.
    """
    from benchmarks import schedules_run

    del tfmot, tfmot_timeout_s  # kopt only.
    runs = {}
    for seed in seeds:
        runs[str(seed)] = harness.result_or_error(
            f"seed {seed}", schedules_run.run, data, seed, settings, log=logging.info, workdir=workdir
        )
    summary = summarize(runs, settings.schedules)
    return {"runs": runs, "summary": summary, "verdicts": judge(summary, settings.schedules)}


SUITE = suite.Suite(
    name=SECTION,
    settings=suite.quick_or_full(SchedulesSettings),
    measure=measure,
    plot=None,
    render=lambda document, settings: render_section(
        document, document["summary"], document["verdicts"], settings.schedules
    ),
    head=suite.repo_data_fields,
    quick_seeds=QUICK_SEEDS,
)
run_benchmark = SUITE.run_benchmark
main = suite.main_for(SUITE)


if __name__ == "__main__":
    app.run(main)
