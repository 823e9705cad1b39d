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
import time

# Before TensorFlow is imported (by quantization_kopt, inside main): C++ info
# logs bury the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import (
    app,  # noqa: E402
    flags,  # noqa: E402
    logging,  # noqa: E402
)

from benchmarks import (
    harness,  # noqa: E402
    machine,  # noqa: E402
    pruning,  # noqa: E402 - defines the flags this benchmark shares.
    quantization_report,  # noqa: E402
)
from benchmarks.quantization_models import DEFAULT_MODEL, MODELS  # noqa: E402
from benchmarks.quantization_settings import QuantizationSettings  # noqa: E402

SECTION = "quantization"
_QAT_MODEL = flags.DEFINE_enum(
    "qat_model", DEFAULT_MODEL, list(MODELS),
    "benchmarks.quantization's model (quantization_models.py); another than the default writes its own section.",
)
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tfmot_quantization_worker.py")
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
        raise app.UsageError(
            f"--{given[0]} is a flag of benchmarks.pruning; benchmarks.quantization does not read it"
        )
    model = flag_values.qat_model
    return QuantizationSettings.quick(model) if flag_values.quick else QuantizationSettings.full(model)


def section_for(model):
    """The section (and file stem) of a run on ``model``: the default's is ``SECTION``."""
    return SECTION if model == DEFAULT_MODEL else f"{SECTION}_{model}"


def run_kopt_seed(data, seed, settings, workdir):
    """kopt's side for one seed; returns its result, or ``{"error": why}``."""
    from benchmarks import quantization_kopt

    return harness.result_or_error(
        f"kopt seed {seed}", quantization_kopt.run, data, seed, settings.as_dict(),
        os.path.join(workdir, f"kopt_seed{seed}"), log=logging.info,
    )


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
                run["files"][kind], threads=1, runs=settings.latency_runs, warmup=settings.latency_warmup,
                batch_size=1, xnnpack=(True, False),
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


def measure_frameworks(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s):
    """Runs both sides for every seed, kopt first, then scores and times the seed's
    files of both together; returns the ``frameworks`` entry."""
    from benchmarks import pruning_kopt

    _, _, x_test, y_test = pruning_kopt.load_arrays(data)
    runs = {"kopt": {}, "tfmot": {}}
    for seed in seeds:
        runs["kopt"][str(seed)] = run_kopt_seed(data, seed, settings, workdir)
        if tfmot.available:
            runs["tfmot"][str(seed)] = pruning.run_tfmot_seed(
                tfmot.python, data, seed, settings, workdir, tfmot_timeout_s, worker=WORKER
            )
        scored = []
        for framework, framework_runs in runs.items():
            run = framework_runs.get(str(seed))
            if run is None or "error" in run:
                continue
            try:
                scored.append(score_run(run, x_test, y_test))
            except Exception as err:  # noqa: BLE001 - reported as that seed's failure.
                logging.exception("%s seed %d: scoring failed", framework, seed)
                framework_runs[str(seed)] = {"error": f"scoring failed: {type(err).__name__}: {str(err)[:200]}"}
        logging.info("seed %d: timing %d files", seed, len(scored) * len(FILE_KINDS))
        time_files(scored, settings)
    return {
        "kopt": pruning.framework_entry(runs["kopt"]),
        "tfmot": pruning.framework_entry(runs["tfmot"], None if tfmot.available else tfmot.reason),
    }


def run_benchmark(data, seeds, settings, tfmot, *, output_dir, markdown_path, command, data_label=None,
                  quick=False, tfmot_timeout_s=3600, keep_files=False, workdir=None):
    """Measures, then writes ``quantization[_quick].{json,png}`` and the markdown section.

    The arguments are those of ``benchmarks.pruning.run_benchmark`` (the flag-free
    entry point), with a :class:`QuantizationSettings` as ``settings``; the files'
    paths are in the JSON (``runs[seed]["files"]``).

    Returns:
        The JSON document written, with the rendered ``section``.
    """
    from benchmarks import quantization_plot

    started = time.time()
    machine_info = machine.describe_machine()
    section = section_for(settings.model)
    stem = harness.result_stem(section, quick)
    os.makedirs(output_dir, exist_ok=True)
    workdir, owned = harness.make_workdir("kopt-quantization-benchmark-", workdir)
    frameworks = measure_frameworks(
        data, seeds, settings, tfmot, workdir=workdir, tfmot_timeout_s=tfmot_timeout_s
    )
    summaries = {name: quantization_report.summarize(entry) for name, entry in frameworks.items()}
    judged = quantization_report.judge(summaries)
    plot_path = quantization_plot.plot(summaries, os.path.join(output_dir, f"{stem}.png"))
    document = {
        **pruning.run_document(
            section, command=command, quick=quick, started=started, data=data, data_label=data_label,
            seeds=seeds, settings=settings, machine_info=machine_info,
        ),
        "plot": os.path.relpath(plot_path, os.path.dirname(os.path.abspath(markdown_path))),
        "frameworks": frameworks,
        "summaries": summaries,
        "targets": judged,
    }
    document["section"] = quantization_report.render_section(document, summaries, judged)
    harness.write_outputs(document, os.path.join(output_dir, f"{stem}.json"), markdown_path)
    harness.finish_workdir(workdir, keep_files, owned=owned)
    return document


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    settings = settings_from_flags()
    data, seeds, tfmot, options = pruning.shared_options(section_for(settings.model), "benchmarks.quantization")
    document = run_benchmark(data, seeds, settings, tfmot, **options)
    print(document["section"])


if __name__ == "__main__":
    app.run(main)
