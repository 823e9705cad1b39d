"""Real architectures on real colour images: kopt and tfmot side by side on CIFAR-10 (issue 25).

Usage, from the repository root::

    python -m benchmarks.cifar                          # seeds 0,1,2, both networks, every row
    python -m benchmarks.cifar --quick                  # smoke run: ResNet-20 alone, tiny data
    python -m benchmarks.cifar --seeds=0 --cifar_models=mobilenet_v2 --skip_tfmot

MobileNetV2 (alpha 0.35) and a ResNet-20 (``cifar_models``) are trained from
scratch on the 12,000 training images of ``../shared/data/cifar10-15k.npz``; every
technique of ``cifar_settings.TECHNIQUES`` starts from that float model, with kopt
(``cifar_kopt``) and, where tfmot has the technique, with tfmot in its own
environment (``tfmot_cifar_worker``), the same recipe on both sides
(``CifarSettings.describe``). Each file is scored with the same code: its accuracy
on the 3,000 test images in LiteRT, its agreement with its own Keras model, its
bytes and gzip bytes; all files of a seed and network, both sides, are timed in
one interleaved pass (LiteRT, XNNPACK, 1 thread, batch 1) and reported as ratios to
the float file; on a CPU with Intel AMX, a second pass in a process that refuses
it (``ms_noamx``: XNNPACK's int8 kernels as on CPUs without AMX, see
``tflite_export.amx``; ``benchmarks.cifar_retime`` adds it to kept files). Results: ``benchmarks/results/cifar.{json,png}`` and the ``cifar``
section of BENCHMARKS.md (``cifar_report``).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import cifar_kopt  # noqa: E402
from benchmarks import cifar_report  # noqa: E402
from benchmarks import suite  # noqa: E402
from benchmarks.cifar_models import MODELS  # noqa: E402
from benchmarks.cifar_settings import TECHNIQUES  # noqa: E402
from benchmarks.cifar_settings import CifarSettings  # noqa: E402
from benchmarks.core import latency  # noqa: E402

__all__ = ["DATA", "SECTION", "SUITE", "main", "measure", "score", "time_rows", "time_seed", "time_without_amx"]

SECTION = cifar_report.SECTION
DATA = os.path.join("..", "shared", "data", "cifar10-15k.npz")

_MODELS = flags.DEFINE_list("cifar_models", list(MODELS), f"Networks to run, among {MODELS}.")
_TECHNIQUES = flags.DEFINE_list("cifar_techniques", list(TECHNIQUES), f"Rows to run, among {TECHNIQUES}.")
_FLOAT_EPOCHS = flags.DEFINE_integer(
    "cifar_float_epochs",
    None,
    "Epochs of the float training from scratch (default: CifarSettings' 15): a longer schedule trains the "
    "float model closer to convergence before every technique starts from it. Write such a part elsewhere "
    "(--output_dir, --markdown) and pool its parts into a section of their own (python -m "
    "benchmarks.cifar_merge --section=NAME ...): the merge refuses to pool it with the 15-epoch parts.",
)


def score(run, x_test, y_test, max_test_examples=None):
    """Adds each row's figures from ``clustering.score_file`` (the accuracy as ``tflite_accuracy``); returns ``run``.

    TFLite accuracy, agreement with its Keras model, bytes, gzip bytes, and the
    most distinct values and share of zeros among its weights.
    """
    from benchmarks import clustering  # Here: importing it defines that benchmark's flags.

    count = max_test_examples or len(x_test)
    x_test, y_test = x_test[:count], y_test[:count]
    for row in run["rows"].values():
        if "error" in row:
            continue
        keras_top1 = np.load(row["keras_top1"]) if row.get("keras_top1") else None
        figures = clustering.score_file(row["file"], x_test, y_test, keras_top1)
        row["tflite_accuracy"] = figures.pop("accuracy")
        row.update(figures)
    return run


def time_seed(runs, settings):
    """Times every file of each network, both sides, in one interleaved pass; adds ``ms`` to each row."""
    for model_name in settings.models:
        rows = {}
        for run in runs:
            for key, row in run["rows"].items():
                if key.startswith(f"{model_name}/") and "error" not in row:
                    rows[(run["side"], key)] = row
        time_rows(rows, settings)


def time_rows(rows, settings):
    """Sets ``ms`` (and ``ms_noamx``, see :func:`time_without_amx`) on ``rows`` (``{key: row}``, one network's
    files of both sides), timed in one interleaved pass."""
    if not rows:
        return
    interpreters = {key: latency.ready_interpreter(row["file"]) for key, row in rows.items()}
    milliseconds = latency.interleaved_ms(interpreters, rounds=settings.latency_rounds, calls=settings.latency_calls)
    for key, row in rows.items():
        row["ms"] = milliseconds[key]
    time_without_amx(rows, settings)


def time_without_amx(rows, settings):
    """Adds ``ms_noamx`` to ``rows`` (``{key: row}``, one network's files): one interleaved pass in a child
    process that refuses Intel AMX. Does nothing on a CPU without AMX (the first pass already ran so)."""
    import tflite_export
    from tflite_export.amx import amx_state

    if amx_state() == "absent" or not rows:
        return
    milliseconds = tflite_export.interleaved_latency(
        {key: row["file"] for key, row in rows.items()},
        rounds=settings.latency_rounds,
        calls=settings.latency_calls,
        amx=False,
    )
    for key, row in rows.items():
        row["ms_noamx"] = milliseconds[key]


def measure(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s):
    """Runs both sides for every seed, scores their files and times them; returns the document's figures."""

    def score_side(run, x_test, y_test):
        run["side"] = run["framework"]
        return score(run, x_test, y_test, settings.max_test_examples)

    def after_seed(seed, scored):
        logging.info("seed %d: timing %d sides' files in one interleaved pass", seed, len(scored))
        time_seed(scored, settings)

    runs = suite.measure_sides(
        data,
        seeds,
        settings,
        tfmot,
        kopt_run=cifar_kopt.run,
        worker="tfmot_cifar_worker.py",
        workdir=workdir,
        tfmot_timeout_s=tfmot_timeout_s,
        score=score_side,
        after_seed=after_seed,
    )
    return {"frameworks": suite.frameworks_of(runs, tfmot)}


def _settings(quick, flag_values):
    overrides = {}
    for flag, field in (("cifar_models", "models"), ("cifar_techniques", "techniques")):
        if flag_values[flag].present or not quick:
            overrides[field] = tuple(flag_values[flag].value)
    if flag_values["cifar_float_epochs"].value is not None:
        overrides["float_epochs"] = flag_values["cifar_float_epochs"].value
    return CifarSettings.quick(**overrides) if quick else CifarSettings(**overrides)


SUITE = suite.Suite(
    name=SECTION,
    settings=_settings,
    measure=measure,
    plot=cifar_report.plot,
    render=cifar_report.render,
    uses_tfmot=True,
    quick_seeds=1,
)


def main(argv):
    """``python -m benchmarks.cifar``: the CIFAR-10 data unless ``--data`` names another archive."""
    if not flags.FLAGS["data"].present:
        flags.FLAGS.data = DATA
    try:
        _settings(flags.FLAGS.quick, flags.FLAGS)
    except ValueError as err:
        raise app.UsageError(str(err)) from err
    suite.main_for(SUITE)(argv)


if __name__ == "__main__":
    app.run(main)
