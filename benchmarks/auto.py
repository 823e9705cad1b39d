"""Accuracy-aware compression benchmark: kopt.auto on tfmot's example CNN and MNIST.

For every seed it trains the float model once, runs the sensitivity analysis on a
validation split carved from the training data, and then fine-tunes, from that
same float model and with the same settings: uniform and sensitivity-allocated
per-layer sparsity at 80% and 90% overall, the random criterion at the same
sparsities, structured pruning of the Conv2D filters by L1 norm and by
first-order Taylor importance, and the whole ``kopt.auto.compress`` search with
``max_accuracy_drop=0.5``. It judges the issue's targets on the test split.

Writes ``<output_dir>/auto.json`` and ``auto.png`` and rewrites the section
between ``<!-- auto:begin -->`` and ``<!-- auto:end -->`` of BENCHMARKS.md. From
the repository root::

    python -m benchmarks.auto                     # 3 seeds, the benchmark's figures
    python -m benchmarks.auto --quick --seeds=0   # smoke run, a few minutes

A ``--quick`` run writes ``auto_quick.{json,png,md}`` in ``--output_dir`` and
leaves BENCHMARKS.md alone.
"""

import os
import time

# Before TensorFlow is imported: C++ info logs bury the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import auto_report  # noqa: E402
from benchmarks import harness  # noqa: E402 - defines the flags every benchmark shares.
from benchmarks import machine  # noqa: E402
from benchmarks.auto_settings import AutoSettings  # noqa: E402

SECTION = "auto"
REPO_ROOT = harness.REPO_ROOT
QUICK_SEEDS = 2

flags.adopt_module_key_flags(harness)


def run_benchmark(data, seeds, settings, *, output_dir, markdown_path, command, quick=False):
    """Runs every seed, writes JSON, PNG and the markdown section; returns the JSON document."""
    from benchmarks import auto_run

    started = time.time()
    machine_info = machine.describe_machine()
    runs = {}
    for seed in seeds:
        runs[str(seed)] = harness.result_or_error(f"seed {seed}", auto_run.run, data, seed, settings, log=logging.info)
    summary = auto_report.summarize(runs, settings)
    verdicts = auto_report.judge(runs, summary, settings)
    stem = harness.result_stem(SECTION, quick)
    os.makedirs(output_dir, exist_ok=True)
    plot_path = auto_report.plot(runs, settings, os.path.join(output_dir, f"{stem}.png"))
    document = {
        **harness.run_fields(
            SECTION, command=command, quick=quick, started=started, seeds=seeds, machine_info=machine_info
        ),
        "data": os.path.relpath(data, REPO_ROOT) if os.path.isabs(data) else data,
        "settings": settings.as_dict(),
        "settings_description": settings.describe(),
        "plot": os.path.relpath(plot_path, os.path.dirname(os.path.abspath(markdown_path))),
        "runs": runs,
        "summary": summary,
        "verdicts": verdicts,
    }
    document["section"] = auto_report.render_section(document, summary, verdicts, settings)
    harness.write_outputs(document, os.path.join(output_dir, f"{stem}.json"), markdown_path)
    return document


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    options = harness.options_from_flags(SECTION, "benchmarks.auto", quick_seed_count=QUICK_SEEDS)
    settings = AutoSettings.quick() if options.quick else AutoSettings.full()
    document = run_benchmark(
        options.data, options.seeds, settings, output_dir=options.output_dir, markdown_path=options.markdown_path,
        command=options.command, quick=options.quick,
    )
    print(document["section"])


if __name__ == "__main__":
    app.run(main)
