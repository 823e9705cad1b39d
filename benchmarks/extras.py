"""Extras benchmark: the rows the per-technique benchmarks leave out, kopt and tfmot in one run.

kopt's side (``extras_kopt.py``): the float baseline, 2:4 and structured pruning,
and Keras 3's own ``model.quantize("int8")``. tfmot's side
(``tfmot_extras_worker.py``, in its own virtual environment): the float baseline,
2:4 pruning, and the clustering rows of ``benchmarks/clustering.py`` (which runs
kopt's). Every file of both sides is scored here by the same code
(``clustering.score_file``: accuracy, agreement with its Keras model, sizes,
distinct weight values and zeros) and 2:4 files are checked with
``tflite_export.inspect(m_by_n=(2, 4))``. Latency is left to ``benchmarks/run.py``,
which times every file of its run together.

Writes ``<output_dir>/extras.json`` and ``extras.png`` and rewrites the section
between ``<!-- extras:begin -->`` and ``<!-- extras:end -->`` of BENCHMARKS.md,
printing it too. From the repository root::

    python -m benchmarks.extras                     # 3 seeds
    python -m benchmarks.extras --quick --seeds=0   # smoke run; writes extras_quick.*
"""

import os

# Before TensorFlow is imported: C++ info logs bury the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from benchmarks import extras_report  # noqa: E402
from benchmarks import harness  # noqa: E402 - defines the flags every benchmark shares.
from benchmarks import suite  # noqa: E402
from benchmarks.extras_kopt import ExtrasSettings  # noqa: E402

__all__ = ["SUITE", "main", "run_benchmark", "score_rows"]

SECTION = "extras"
WORKER = "tfmot_extras_worker.py"
# --help lists the shared flags (--data, --seeds, --quick, ...) as this benchmark's own.
flags.adopt_module_key_flags(harness)


def score_rows(run, x_test, y_test):
    """Adds ``score`` to every row of one side's run: Keras and TFLite figures of the test set,
    the file's parameter count and, for 2:4 files, whether the pattern holds.

    A row without a file gets its Keras accuracy only.
    """
    import tflite_export
    from benchmarks import clustering

    for name, row in run["rows"].items():
        keras_top1 = np.load(row["keras_top1"])
        if not row.get("file"):
            row["score"] = {"keras_accuracy": float(np.mean(keras_top1 == y_test))}
            continue
        row["score"] = clustering.score_file(row["file"], x_test, y_test, keras_top1)
        # Parameters as the file holds them: a QAT model's Keras count includes its quantizers' ranges.
        inspected = tflite_export.inspect(row["file"], m_by_n=(2, 4) if name == "m_by_n_2_4" else None)
        row["score"]["params"] = inspected["parameters"]
        if inspected["m_by_n"] is not None:
            row["score"]["m_by_n_ok"] = inspected["m_by_n"]["ok"]
    return run


def measure(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s):
    """Runs both sides for every seed, kopt first, and scores their files; returns ``frameworks`` and ``rows``."""
    from benchmarks import extras_kopt

    runs = suite.measure_sides(
        data,
        seeds,
        settings,
        tfmot,
        kopt_run=extras_kopt.run,
        worker=WORKER,
        workdir=workdir,
        tfmot_timeout_s=tfmot_timeout_s,
        score=score_rows,
    )
    frameworks = suite.frameworks_of(runs, tfmot)
    return {"frameworks": frameworks, "rows": extras_report.seed_rows(frameworks)}


SUITE = suite.Suite(
    name=SECTION,
    settings=suite.quick_or_full(ExtrasSettings),
    measure=measure,
    plot=lambda document, _, path: extras_report.plot(document["rows"], path),
    render=lambda document, _: extras_report.render_section(document),
    uses_tfmot=True,
)
run_benchmark = SUITE.run_benchmark
main = suite.main_for(SUITE)


if __name__ == "__main__":
    app.run(main)
