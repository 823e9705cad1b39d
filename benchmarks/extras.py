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
import time

# Before TensorFlow is imported: C++ info logs bury the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import extras_report  # noqa: E402
from benchmarks import harness  # noqa: E402 - defines the flags every benchmark shares.
from benchmarks import machine  # noqa: E402
from benchmarks import pruning  # noqa: E402
from benchmarks.extras_kopt import ExtrasSettings  # noqa: E402

SECTION = "extras"
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tfmot_extras_worker.py")
# --help lists the shared flags (--data, --seeds, --quick, ...) as this benchmark's own.
flags.adopt_module_key_flags(harness)


def run_kopt_seed(data, seed, settings, workdir):
    """kopt's side for one seed; returns its result, or ``{"error": why}``."""
    from benchmarks import extras_kopt

    return harness.result_or_error(
        f"kopt seed {seed}", extras_kopt.run, data, seed, settings.as_dict(),
        os.path.join(workdir, f"kopt_seed{seed}"), log=logging.info,
    )


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


def measure_frameworks(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s):
    """Runs both sides for every seed, kopt first, and scores their files; returns ``frameworks``."""
    from benchmarks import pruning_kopt

    _, _, x_test, y_test = pruning_kopt.load_arrays(data)
    runs = {"kopt": {}, "tfmot": {}}
    for seed in seeds:
        runs["kopt"][str(seed)] = run_kopt_seed(data, seed, settings, workdir)
        if tfmot.available:
            runs["tfmot"][str(seed)] = pruning.run_tfmot_seed(
                tfmot.python, data, seed, settings, workdir, tfmot_timeout_s, worker=WORKER
            )
        for framework, framework_runs in runs.items():
            run = framework_runs.get(str(seed))
            if run is None or "error" in run:
                continue
            try:
                score_rows(run, x_test, y_test)
            except Exception as err:  # noqa: BLE001 - reported as that seed's failure.
                logging.exception("%s seed %d: scoring failed", framework, seed)
                framework_runs[str(seed)] = {"error": f"scoring failed: {type(err).__name__}: {str(err)[:200]}"}
    return {
        "kopt": pruning.framework_entry(runs["kopt"]),
        "tfmot": pruning.framework_entry(runs["tfmot"], None if tfmot.available else tfmot.reason),
    }


def run_benchmark(data, seeds, settings, tfmot, *, output_dir, markdown_path, command, data_label=None,
                  quick=False, tfmot_timeout_s=3600, keep_files=False, workdir=None):
    """Measures, then writes ``extras[_quick].{json,png}`` and the markdown section.

    The arguments are those of ``benchmarks.pruning.run_benchmark``, with an
    :class:`ExtrasSettings` as ``settings``; the files' paths are in the JSON.

    Returns:
        The JSON document written, with the rendered ``section``.
    """
    started = time.time()
    machine_info = machine.describe_machine()
    stem = harness.result_stem(SECTION, quick)
    os.makedirs(output_dir, exist_ok=True)
    workdir, owned = harness.make_workdir("kopt-extras-benchmark-", workdir)
    frameworks = measure_frameworks(data, seeds, settings, tfmot, workdir=workdir, tfmot_timeout_s=tfmot_timeout_s)
    rows = extras_report.seed_rows(frameworks)
    plot_path = extras_report.plot(rows, os.path.join(output_dir, f"{stem}.png"))
    document = {
        **pruning.run_document(
            SECTION, command=command, quick=quick, started=started, data=data, data_label=data_label,
            seeds=seeds, settings=settings, machine_info=machine_info,
        ),
        "plot": os.path.relpath(plot_path, os.path.dirname(os.path.abspath(markdown_path))),
        "frameworks": frameworks,
        "rows": rows,
    }
    document["section"] = extras_report.render_section(document)
    harness.write_outputs(document, os.path.join(output_dir, f"{stem}.json"), markdown_path)
    harness.finish_workdir(workdir, keep_files, owned=owned)
    return document


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    options = harness.options_from_flags(SECTION, "benchmarks.extras")
    tfmot = harness.tfmot_for(options.skip_tfmot)
    settings = ExtrasSettings.quick() if options.quick else ExtrasSettings.full()
    document = run_benchmark(
        options.data, options.seeds, settings, tfmot, output_dir=options.output_dir,
        markdown_path=options.markdown_path, command=options.command, data_label=options.data_label,
        quick=options.quick, tfmot_timeout_s=options.tfmot_timeout_s, keep_files=options.keep_files,
    )
    print(document["section"])


if __name__ == "__main__":
    app.run(main)
