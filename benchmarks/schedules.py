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
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import harness  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks.schedules_settings import SchedulesSettings  # noqa: E402

SECTION = "schedules"
QUICK_SEEDS = 2
flags.adopt_module_key_flags(harness)


def spread(values):
    """Mean, sample std and max-min of ``values``."""
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "range": max(values) - min(values),
    }


def summarize(runs, schedules):
    ran = [run for run in runs.values() if "error" not in run]
    summary = {"float": spread([run["float"]["test_accuracy"] for run in ran])}
    for schedule in schedules:
        summary[schedule] = spread([run[schedule]["test_accuracy"] for run in ran])
        summary[f"{schedule}_margin"] = spread(
            [run[schedule]["test_accuracy"] - run["constant"]["test_accuracy"] for run in ran]
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
        verdicts.append({
            "target": f"{schedule} beats constant by more than the seed-to-seed spread (larger max-min)",
            "measured": f"mean margin {margin:+.2f} points, spread {noise:.2f}",
            "passed": margin > noise,
        })
    return verdicts


def render_section(document, summary, verdicts, schedules):
    settings = document["settings_description"]
    lines = ["## Learning-rate schedules for fine-tuning after pruning", ""]
    lines += [f"Command: `{document['command']}`. {document['machine_line']}", ""]
    lines += settings + [""]
    header = "| seed | float | " + " | ".join(schedules) + " | " + " | ".join(
        f"{s} - constant" for s in schedules if s != "constant") + " |"
    lines += ["Test accuracy in percent of the stripped 80%-sparse model (float: before pruning).", "", header,
              "|" + "---|" * (2 + len(schedules) + len(schedules) - 1)]
    for seed, run in document["runs"].items():
        if "error" in run:
            lines.append(f"| {seed} | error: {run['error']} |")
            continue
        cells = [f"{run['float']['test_accuracy']:.2f}"] + [f"{run[s]['test_accuracy']:.2f}" for s in schedules]
        cells += [f"{run[s]['test_accuracy'] - run['constant']['test_accuracy']:+.2f}" for s in schedules if s != "constant"]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    for stat in ("mean", "std", "range"):
        cells = [f"{summary['float'][stat]:.2f}"] + [f"{summary[s][stat]:.2f}" for s in schedules]
        cells += [f"{summary[f'{s}_margin'][stat]:+.2f}" for s in schedules if s != "constant"]
        lines.append(f"| {stat} | " + " | ".join(cells) + " |")
    sparsities = sorted({round(run[s]["sparsity"], 3) for run in document["runs"].values() if "error" not in run
                         for s in schedules})
    lines += ["", f"Kernel sparsity of every pruned model: {', '.join(f'{v:.3f}' for v in sparsities)}.", ""]
    for verdict in verdicts:
        lines.append(f"- {'PASS' if verdict['passed'] else 'FAIL'}: {verdict['target']}: {verdict['measured']}.")
    return "\n".join(lines)


def run_benchmark(data, seeds, settings, *, output_dir, markdown_path, command, quick=False):
    from benchmarks import schedules_run

    started = time.time()
    machine_info = machine.describe_machine()
    workdir, owned = harness.make_workdir("kopt-schedules-benchmark-")
    runs = {}
    for seed in seeds:
        try:
            runs[str(seed)] = schedules_run.run(data, seed, settings, log=logging.info, workdir=workdir)
        except Exception as err:  # noqa: BLE001 - a failing seed is reported and the run goes on.
            logging.exception("seed %d failed", seed)
            runs[str(seed)] = {"error": f"{type(err).__name__}: {str(err)[:200]}"}
    summary = summarize(runs, settings.schedules)
    verdicts = judge(summary, settings.schedules)
    document = {
        **harness.run_fields(SECTION, command=command, quick=quick, started=started, seeds=seeds,
                             machine_info=machine_info),
        "data": os.path.relpath(data, harness.REPO_ROOT) if os.path.isabs(data) else data,
        "settings": settings.as_dict(),
        "settings_description": settings.describe(),
        "runs": runs,
        "summary": summary,
        "verdicts": verdicts,
    }
    document["section"] = render_section(document, summary, verdicts, settings.schedules)
    os.makedirs(output_dir, exist_ok=True)
    harness.write_outputs(document, os.path.join(output_dir, f"{harness.result_stem(SECTION, quick)}.json"),
                          markdown_path)
    harness.finish_workdir(workdir, False, owned=owned)
    return document


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    options = harness.options_from_flags(SECTION, "benchmarks.schedules", quick_seed_count=QUICK_SEEDS)
    settings = SchedulesSettings.quick() if options.quick else SchedulesSettings.full()
    document = run_benchmark(options.data, options.seeds, settings, output_dir=options.output_dir,
                             markdown_path=options.markdown_path, command=options.command, quick=options.quick)
    print(document["section"])


if __name__ == "__main__":
    app.run(main)
