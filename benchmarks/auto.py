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

# Before TensorFlow is imported: C++ info logs bury the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import auto_report  # noqa: E402
from benchmarks import harness  # noqa: E402 - defines the flags every benchmark shares.
from benchmarks import suite  # noqa: E402
from benchmarks.auto_settings import AutoSettings  # noqa: E402

__all__ = ["QUICK_SEEDS", "SUITE", "main", "run_benchmark"]

SECTION = "auto"
QUICK_SEEDS = 2

flags.adopt_module_key_flags(harness)


def measure(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s):
    """Runs every seed (``auto_run.run``); returns ``runs``, ``summary`` and ``verdicts``.

    kopt only, and nothing is exported: ``tfmot``, ``workdir`` and ``tfmot_timeout_s`` are not read.
    """
    from benchmarks import auto_run

    del tfmot, workdir, tfmot_timeout_s  # kopt only; auto_run keeps no files.
    runs = {}
    for seed in seeds:
        runs[str(seed)] = harness.result_or_error(f"seed {seed}", auto_run.run, data, seed, settings, log=logging.info)
    summary = auto_report.summarize(runs, settings)
    return {"runs": runs, "summary": summary, "verdicts": auto_report.judge(runs, summary, settings)}


SUITE = suite.Suite(
    name=SECTION,
    settings=suite.quick_or_full(AutoSettings),
    measure=measure,
    plot=lambda document, settings, path: auto_report.plot(document["runs"], settings, path),
    render=lambda document, settings: auto_report.render_section(
        document, document["summary"], document["verdicts"], settings
    ),
    head=suite.repo_data_fields,
    quick_seeds=QUICK_SEEDS,
)
run_benchmark = SUITE.run_benchmark
main = suite.main_for(SUITE)


if __name__ == "__main__":
    app.run(main)
