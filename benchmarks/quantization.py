"""Quantization benchmark: kopt.quantization and tensorflow-model-optimization, in the same run.

Both sides train a CNN with BatchNormalization (``quantization_models.py``) as
the pruning benchmark trains its model, export it as float32 and
post-training-quantized (PTQ) int8 TFLite, fine-tune a copy with
quantization-aware training (QAT) and a copy without (the step-time reference), and export the QAT model as int8 TFLite (see
``quantization_settings.py``). tfmot runs in its own virtual environment
(``tfmot_env.py``) through ``tfmot_quantization_worker.py``; kopt never imports
it. Every file of both sides is then scored on the whole 10,000-image MNIST test
set, sized and timed here, by the same code: ``tflite_export.predict``,
``file_sizes`` and ``benchmark`` (LiteRT, XNNPACK, 1 thread, batch 1).

Writes ``<output_dir>/quantization.json`` and ``quantization.png`` and rewrites
the section between ``<!-- quantization:begin -->`` and
``<!-- quantization:end -->`` of BENCHMARKS.md, printing that section too. From
the repository root::

    python -m benchmarks.quantization                      # 3 seeds, the benchmark's figures
    python -m benchmarks.quantization --quick --seeds=0    # smoke run, a few minutes
    python -m benchmarks.quantization --qat_model=tfmot_example_cnn   # the pruning benchmark's 20k CNN

A model other than the default writes ``quantization_<model>.{json,png}`` and its
own section, ``quantization_<model>``, so the default's figures stay.

The flags are the pruning benchmark's (this module imports it), less
``--sparsities``, ``--end_step_epochs`` and ``--frequency``, which are refused.
A ``--quick`` run writes ``quantization_quick.{json,png,md}`` in
``--output_dir`` and leaves BENCHMARKS.md alone unless ``--markdown`` is given.
"""

import os

# Before TensorFlow is imported (by quantization_kopt, inside main): C++ info
# logs bury the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import pruning  # noqa: E402 - defines the flags this benchmark shares.
from benchmarks import quantization_report  # noqa: E402
from benchmarks import suite  # noqa: E402
from benchmarks.quantization_models import DEFAULT_MODEL  # noqa: E402
from benchmarks.quantization_models import MODELS  # noqa: E402
from benchmarks.quantization_settings import QuantizationSettings  # noqa: E402

__all__ = [
    "FILE_KINDS",
    "SUITE",
    "main",
    "run_benchmark",
    "score_run",
    "section_for",
    "settings_from_flags",
    "time_files",
]

SECTION = "quantization"
_QAT_MODEL = flags.DEFINE_enum(
    "qat_model",
    DEFAULT_MODEL,
    list(MODELS),
    "benchmarks.quantization's model (quantization_models.py); another than the default writes its own section.",
)
WORKER = "tfmot_quantization_worker.py"
PRUNING_ONLY_FLAGS = ("sparsities", "end_step_epochs", "frequency")
FILE_KINDS = ("float32", "ptq_int8", "qat_int8")
# --help lists the shared flags as this benchmark's own.
flags.adopt_module_key_flags(pruning)
# Which Keras model's predictions each file is compared with.
_KERAS_MODEL_OF = {"float32": "float", "ptq_int8": "float", "qat_int8": "qat"}


def settings_from_flags(flag_values=flags.FLAGS):
    """Returns the :class:`QuantizationSettings` the parsed flags ask for.

    Raises:
        app.UsageError: If a flag that only the pruning benchmark reads was given.
    """
    given = [name for name in PRUNING_ONLY_FLAGS if flag_values[name].present]
    if given:
        raise app.UsageError(f"--{given[0]} is a flag of benchmarks.pruning; benchmarks.quantization does not read it")
    model = flag_values.qat_model
    return QuantizationSettings.quick(model) if flag_values.quick else QuantizationSettings.full(model)


def section_for(model):
    """The section (and file stem) of a run on ``model``: the default's is ``SECTION``."""
    return SECTION if model == DEFAULT_MODEL else f"{SECTION}_{model}"


def score_run(run, x_test, y_test):
    """Adds ``run["scores"][kind]``: accuracy, agreement and sizes of each file.

    Every file is run with ``tflite_export.predict``; its Keras model's top-1
    classes come from the ``.npy`` file the side saved.
    """
    import tflite_export

    keras_top1 = {name: np.load(path) for name, path in run["keras_top1"].items()}
    scores = {}
    for kind in FILE_KINDS:
        path = run["files"][kind]
        tflite_top1 = np.argmax(tflite_export.predict(path, x_test), axis=-1)
        reference = keras_top1[_KERAS_MODEL_OF[kind]]
        sizes = tflite_export.file_sizes(path)
        scores[kind] = {
            "tflite_accuracy": float(np.mean(tflite_top1 == y_test)),
            "keras_accuracy": float(np.mean(reference == y_test)),
            "agreement": float(np.mean(tflite_top1 == reference)),
            "bytes": sizes["bytes"],
            "gzip_bytes": sizes["gzip_bytes"],
        }
    run["scores"] = scores
    return run


def time_files(runs, settings):
    """Adds latency figures to ``run["scores"][kind]`` for every file of ``runs``.

    The files take turns, ``settings.latency_rounds`` times; each file keeps the
    median of its rounds' medians, with XNNPACK (``latency_ms``, the target's
    measure) and without (``latency_no_xnnpack_ms``).
    """
    import tflite_export

    files = [(run, kind) for run in runs for kind in FILE_KINDS]
    rounds = {(id(run), kind): {"xnnpack": [], "no_xnnpack": []} for run, kind in files}
    for _ in range(settings.latency_rounds):
        for run, kind in files:
            result = tflite_export.benchmark(
                run["files"][kind],
                threads=1,
                runs=settings.latency_runs,
                warmup=settings.latency_warmup,
                batch_size=1,
                xnnpack=(True, False),
            )
            for setting, medians in rounds[(id(run), kind)].items():
                medians.append(result[setting]["median_ms"])
    for run, kind in files:
        medians = rounds[(id(run), kind)]
        run["scores"][kind].update(
            latency_ms=float(np.median(medians["xnnpack"])),
            latency_no_xnnpack_ms=float(np.median(medians["no_xnnpack"])),
            latency_round_medians_ms=medians,
        )


def measure(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s):
    """Runs both sides for every seed, kopt first, then scores and times the seed's
    files of both together; returns ``frameworks``, ``summaries`` and ``targets``."""
    from benchmarks import quantization_kopt

    def time_seed(seed, scored):
        logging.info("seed %d: timing %d files", seed, len(scored) * len(FILE_KINDS))
        time_files(scored, settings)

    runs = suite.measure_sides(
        data,
        seeds,
        settings,
        tfmot,
        kopt_run=quantization_kopt.run,
        worker=WORKER,
        workdir=workdir,
        tfmot_timeout_s=tfmot_timeout_s,
        score=score_run,
        after_seed=time_seed,
    )
    frameworks = suite.frameworks_of(runs, tfmot)
    summaries = {name: quantization_report.summarize(entry) for name, entry in frameworks.items()}
    return {"frameworks": frameworks, "summaries": summaries, "targets": quantization_report.judge(summaries)}


def plot(document, settings, path):
    """Accuracy, size and latency of each file, both sides (``quantization_plot``); returns ``path``."""
    from benchmarks import quantization_plot

    del settings  # The summaries hold every figure drawn.
    return quantization_plot.plot(document["summaries"], path)


SUITE = suite.Suite(
    name=SECTION,
    settings=suite.quick_or_full(QuantizationSettings),
    measure=measure,
    plot=plot,
    render=lambda document, _: quantization_report.render_section(document, document["summaries"], document["targets"]),
    uses_tfmot=True,
    section_of=lambda settings: section_for(settings.model),
)
run_benchmark = SUITE.run_benchmark
main = suite.main_for(SUITE, settings_from_flags)


if __name__ == "__main__":
    app.run(main)
