"""Distillation benchmark: a distilled student against the same student trained from scratch.

For every seed it trains the teacher once, caches its logits, then trains the
student twice from the same initial weights with the same optimizer, batch
size, epochs and example order: on the labels alone and with
:class:`kopt.distillation.Distiller` (see ``distillation_settings.py``). It
reports every seed's test and validation accuracy, the mean and spread (std and
max-min), and judges the issue's targets: the student has at most a tenth of
the teacher's parameters, and the mean margin exceeds the seed-to-seed spread.

Writes ``<output_dir>/distillation.json`` and ``distillation.png`` and rewrites
the section between ``<!-- distillation:begin -->`` and
``<!-- distillation:end -->`` of BENCHMARKS.md, printing that section. From the
repository root::

    python -m benchmarks.distillation                     # 3 seeds, the benchmark's figures
    python -m benchmarks.distillation --quick --seeds=0   # smoke run, a minute or two

A ``--quick`` run writes ``distillation_quick.{json,png,md}`` in ``--output_dir``
and leaves BENCHMARKS.md alone unless ``--markdown`` is given. Both students are
also exported as float32 TFLite and scored (``runs[seed][kind]["tflite"]``), and
their training is timed per step (``steps``) for ``benchmarks/run.py``'s summary.
"""

import os

# Before TensorFlow is imported: C++ info logs bury the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import distillation_report  # noqa: E402
from benchmarks import harness  # noqa: E402 - defines the flags every benchmark shares.
from benchmarks import suite  # noqa: E402
from benchmarks.distillation_settings import DistillationSettings  # noqa: E402

__all__ = ["QUICK_SEEDS", "SUITE", "main", "run_benchmark"]

SECTION = "distillation"
# The spread over seeds needs two of them, even in a smoke run.
QUICK_SEEDS = 2
# --help lists the shared flags (--data, --seeds, --quick, ...) as this benchmark's own.
flags.adopt_module_key_flags(harness)


def measure(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s):
    """Trains the teacher and both students for every seed; returns ``params``, ``runs``, ``rows``,
    ``summary`` and ``verdicts``. kopt only: ``tfmot`` and ``tfmot_timeout_s`` are not read."""
    from benchmarks import distillation_run

    del tfmot, tfmot_timeout_s  # kopt only.
    runs = {}
    for seed in seeds:
        runs[str(seed)] = harness.result_or_error(
            f"seed {seed}", distillation_run.run, data, seed, settings, log=logging.info, workdir=workdir
        )
    ran = [run for run in runs.values() if "error" not in run]
    params = {"teacher": ran[0]["teacher"]["params"], "student": ran[0]["scratch"]["params"]} if ran else None
    summary = distillation_report.summarize(runs)
    return {
        "params": params,
        "runs": runs,
        "rows": distillation_report.seed_rows(runs),
        "summary": summary,
        "verdicts": distillation_report.judge(summary, params),
    }


SUITE = suite.Suite(
    name=SECTION,
    settings=suite.quick_or_full(DistillationSettings),
    measure=measure,
    plot=lambda document, _, path: distillation_report.plot(document["rows"], path),
    render=lambda document, _: distillation_report.render_section(document, document["summary"], document["verdicts"]),
    head=suite.repo_data_fields,
    quick_seeds=QUICK_SEEDS,
)
run_benchmark = SUITE.run_benchmark
main = suite.main_for(SUITE)


if __name__ == "__main__":
    app.run(main)
