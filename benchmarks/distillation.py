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
import time

# Before TensorFlow is imported: C++ info logs bury the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import distillation_report  # noqa: E402
from benchmarks import harness  # noqa: E402 - defines the flags every benchmark shares.
from benchmarks import machine  # noqa: E402
from benchmarks.distillation_settings import DistillationSettings  # noqa: E402

SECTION = "distillation"
REPO_ROOT = harness.REPO_ROOT
# The spread over seeds needs two of them, even in a smoke run.
QUICK_SEEDS = 2
# --help lists the shared flags (--data, --seeds, --quick, ...) as this benchmark's own.
flags.adopt_module_key_flags(harness)


def run_benchmark(data, seeds, settings, *, output_dir, markdown_path, command, quick=False, workdir=None,
                  keep_files=False):
    """Runs every seed, writes JSON, PNG and the markdown section; returns the JSON document.

    ``workdir`` (kept) receives the students' ``.tflite`` files, whose paths are in
    the JSON; by default a temporary folder, removed at the end unless ``keep_files``.
    """
    from benchmarks import distillation_run

    started = time.time()
    machine_info = machine.describe_machine()
    workdir, owned = harness.make_workdir("kopt-distillation-benchmark-", workdir)
    runs = {}
    for seed in seeds:
        runs[str(seed)] = harness.result_or_error(
            f"seed {seed}", distillation_run.run, data, seed, settings, log=logging.info, workdir=workdir
        )
    ran = [run for run in runs.values() if "error" not in run]
    params = {"teacher": ran[0]["teacher"]["params"], "student": ran[0]["scratch"]["params"]} if ran else None
    summary = distillation_report.summarize(runs)
    verdicts = distillation_report.judge(summary, params)
    stem = harness.result_stem(SECTION, quick)
    os.makedirs(output_dir, exist_ok=True)
    rows = distillation_report.seed_rows(runs)
    plot_path = distillation_report.plot(rows, os.path.join(output_dir, f"{stem}.png"))
    document = {
        **harness.run_fields(
            SECTION, command=command, quick=quick, started=started, seeds=seeds, machine_info=machine_info
        ),
        "data": os.path.relpath(data, REPO_ROOT) if os.path.isabs(data) else data,
        "settings": settings.as_dict(),
        "settings_description": settings.describe(),
        "params": params,
        "plot": os.path.relpath(plot_path, os.path.dirname(os.path.abspath(markdown_path))),
        "runs": runs,
        "rows": rows,
        "summary": summary,
        "verdicts": verdicts,
    }
    document["section"] = distillation_report.render_section(document, summary, verdicts)
    harness.write_outputs(document, os.path.join(output_dir, f"{stem}.json"), markdown_path)
    harness.finish_workdir(workdir, keep_files, owned=owned)
    return document


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    options = harness.options_from_flags(SECTION, "benchmarks.distillation", quick_seed_count=QUICK_SEEDS)
    settings = DistillationSettings.quick() if options.quick else DistillationSettings.full()
    document = run_benchmark(
        options.data, options.seeds, settings, output_dir=options.output_dir, markdown_path=options.markdown_path,
        command=options.command, quick=options.quick, keep_files=options.keep_files,
    )
    print(document["section"])


if __name__ == "__main__":
    app.run(main)
