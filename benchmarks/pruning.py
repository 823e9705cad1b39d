"""Pruning benchmark: kopt.pruning and tensorflow-model-optimization, in the same run.

Both sides train the CNN of tfmot's "Pruning in Keras example" with that example's
model, epochs and optimizer and a practitioner's schedule, batch size and choice of
layers (see ``pruning_settings.py``, which says why), prune it
to each target sparsity, strip it, export float32 and int8 TFLite and score the
files in the LiteRT interpreter on the whole 10,000-image MNIST test set. tfmot runs
in its own virtual environment (``tfmot_env.py``) through
``tfmot_pruning_worker.py``; kopt never imports it.

Writes ``<output_dir>/pruning.json`` and ``pruning.png`` and rewrites the section
between ``<!-- pruning:begin -->`` and ``<!-- pruning:end -->`` of BENCHMARKS.md,
printing that section too. From the repository root::

    python -m benchmarks.pruning                      # 3 seeds, the benchmark's figures
    python -m benchmarks.pruning --quick --skip_tfmot # smoke run, a few minutes

A ``--quick`` run writes ``pruning_quick.{json,png,md}`` in ``--output_dir`` and
leaves BENCHMARKS.md alone unless ``--markdown`` is given.
"""

import dataclasses
import json
import os
import subprocess
import time

# Before TensorFlow is imported (by pruning_kopt, inside main): C++ info logs bury
# the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import (
    app,  # noqa: E402
    flags,  # noqa: E402
    logging,  # noqa: E402
)

from benchmarks import (
    harness,  # noqa: E402 - defines the flags every benchmark shares.
    machine,  # noqa: E402
    pruning_report,  # noqa: E402
    tfmot_env,  # noqa: E402
)
from benchmarks.pruning_settings import PruningSettings  # noqa: E402

REPO_ROOT = harness.REPO_ROOT
SECTION = "pruning"
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tfmot_pruning_worker.py")

_SPARSITIES = flags.DEFINE_list("sparsities", ["0.5", "0.8", "0.9"], "Target sparsities in (0, 1).")
# The shared flags (--data, --seeds, --quick, --skip_tfmot, ...) are harness's;
# --help lists them as this benchmark's own.
flags.adopt_module_key_flags(harness)
_END_STEP_EPOCHS = flags.DEFINE_integer(
    "end_step_epochs", None, "End the sparsity ramp after this many fine-tuning epochs (default: 1).",
    lower_bound=1,
)
_FREQUENCY = flags.DEFINE_integer(
    "frequency", None, "Steps between mask updates (default: 20; --quick: 10; tfmot's example: 100).", lower_bound=1
)


def parse_sparsities(values):
    """Parses and checks ``--sparsities``; raises ``app.UsageError`` naming a bad value."""
    sparsities = []
    for value in values:
        try:
            sparsity = float(value)
        except ValueError:
            raise app.UsageError(f"--sparsities must be numbers in (0, 1). Received: {value!r}") from None
        if not 0 < sparsity < 1:
            raise app.UsageError(f"--sparsities must be in (0, 1). Received: {value!r}")
        sparsities.append(sparsity)
    if not sparsities:
        raise app.UsageError("--sparsities must name at least one sparsity")
    return tuple(sparsities)


def run_tfmot_seed(python, data, seed, settings, workdir, timeout_s, *, worker=WORKER):
    """Runs the worker for one seed; returns its result, or ``{"error": why}``.

    ``worker`` is the script run with ``python``; it takes ``--data --seed
    --settings --output --workdir`` and writes its JSON result to ``--output``.
    """
    output = os.path.join(workdir, f"tfmot_seed{seed}.json")
    log_path = os.path.join(workdir, f"tfmot_seed{seed}.log")
    command = [
        python, worker, "--data", data, "--seed", str(seed),
        "--settings", json.dumps(settings.as_dict()), "--output", output,
        "--workdir", os.path.join(workdir, f"tfmot_seed{seed}"),
    ]
    logging.info("tfmot seed %d: running the worker (log %s)", seed, log_path)
    try:
        with open(log_path, "w", encoding="utf-8") as log_file:
            completed = subprocess.run(
                command, env=tfmot_env.legacy_keras_environ(), stdout=log_file, stderr=subprocess.STDOUT,
                timeout=timeout_s, cwd=REPO_ROOT, check=False,
            )
    except subprocess.TimeoutExpired:
        return {"error": f"the worker ran past --tfmot_timeout_s={timeout_s}"}
    if completed.returncode != 0 or not os.path.isfile(output):
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = [line.strip() for line in f.read().splitlines() if line.strip()][-1:]
        return {"error": f"worker exit status {completed.returncode}: {' '.join(tail)[:200]}"}
    with open(output, encoding="utf-8") as f:
        return json.load(f)


def run_kopt_seed(data, seed, settings, workdir):
    from benchmarks import pruning_kopt

    return harness.result_or_error(
        f"kopt seed {seed}", pruning_kopt.run, data, seed, settings.as_dict(),
        os.path.join(workdir, f"kopt_seed{seed}"), log=logging.info,
    )


def data_summary(path, settings):
    """'N of M training images used, K test images' for ``settings.max_train_examples``."""
    with np.load(path, allow_pickle=False) as archive:
        train, test = len(archive["y_train"]), len(archive["y_test"])
    used = train if settings.max_train_examples is None else min(train, settings.max_train_examples)
    return f"{used:,} of {train:,} training images used, {test:,} test images"


def framework_entry(runs, reason=None):
    """A framework's entry of the document (see ``pruning_report``) from its seeds' runs."""
    ok = [run for run in runs.values() if "error" not in run]
    entry = {"status": "ran" if ok else pruning_report.NOT_RUN, "reason": reason, "runs": runs,
             "versions": ok[0]["versions"] if ok else {}}
    if not ok and reason is None:
        entry["reason"] = "; ".join(sorted({run["error"] for run in runs.values()}))
    return entry


def measure_frameworks(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s):
    """Runs both sides for every seed, kopt first; returns the ``frameworks`` entry."""
    kopt_runs, tfmot_runs = {}, {}
    for seed in seeds:
        kopt_runs[str(seed)] = run_kopt_seed(data, seed, settings, workdir)
        if tfmot.available:
            tfmot_runs[str(seed)] = run_tfmot_seed(tfmot.python, data, seed, settings, workdir, tfmot_timeout_s)
    frameworks = {
        "kopt": framework_entry(kopt_runs),
        "tfmot": framework_entry(tfmot_runs, None if tfmot.available else tfmot.reason),
    }
    pruning_note = next((run["pruning_not_run"] for run in kopt_runs.values() if "pruning_not_run" in run), None)
    if pruning_note:
        frameworks["kopt"]["versions"] = {**frameworks["kopt"]["versions"], "pruning": f"not run: {pruning_note}"}
    return frameworks


def run_benchmark(
    data,
    seeds,
    settings,
    tfmot,
    *,
    output_dir,
    markdown_path,
    command,
    data_label=None,
    quick=False,
    tfmot_timeout_s=3600,
    keep_files=False,
    workdir=None,
):
    """Measures, then writes ``pruning[_quick].{json,png}`` and the markdown section.

    The flag-free entry point (``benchmarks/run.py`` calls it with one shared
    :class:`tfmot_env.TfmotEnv`).

    Args:
        data: Path of the MNIST-layout ``.npz`` archive.
        seeds: Training seeds, each run and reported.
        settings: A :class:`PruningSettings`.
        tfmot: Where tfmot runs, or why it cannot (then its cells read "not run").
        output_dir: Folder for the JSON and PNG.
        markdown_path: Markdown file whose ``pruning`` section is rewritten.
        command: The command line stated in the section.
        data_label: How the section names ``data``; defaults to the path.
        quick: Marks the section and file names as a smoke run.
        tfmot_timeout_s: Time limit of the tfmot worker per seed.
        keep_files: Keep the exported ``.tflite`` files.
        workdir: Folder for the exported files, kept; default: a temporary one,
            removed at the end unless ``keep_files``. Their paths are in the JSON.

    Returns:
        The JSON document written, with the rendered ``section``.
    """
    started = time.time()
    machine_info = machine.describe_machine()
    stem = harness.result_stem(SECTION, quick)
    os.makedirs(output_dir, exist_ok=True)
    workdir, owned = harness.make_workdir("kopt-pruning-benchmark-", workdir)
    frameworks = measure_frameworks(
        data, seeds, settings, tfmot, workdir=workdir, tfmot_timeout_s=tfmot_timeout_s
    )
    sparsities = settings.sparsities
    summaries = {name: pruning_report.summarize(entry, sparsities) for name, entry in frameworks.items()}
    judged = pruning_report.judge(summaries, sparsities)
    plot_path = os.path.join(output_dir, f"{stem}.png")
    from benchmarks import pruning_plot

    pruning_plot.plot(summaries, sparsities, plot_path)
    document = {
        **run_document(
            SECTION, command=command, quick=quick, started=started, data=data, data_label=data_label,
            seeds=seeds, settings=settings, machine_info=machine_info,
        ),
        "plot": os.path.relpath(plot_path, os.path.dirname(os.path.abspath(markdown_path))),
        "frameworks": frameworks,
        "summaries": summaries,
        "targets": judged,
    }
    document["section"] = pruning_report.render_section(document, summaries, judged)
    harness.write_outputs(document, os.path.join(output_dir, f"{stem}.json"), markdown_path)
    harness.finish_workdir(workdir, keep_files, owned=owned)
    return document


def run_document(section, *, command, quick, started, data, data_label, seeds, settings, machine_info):
    """The fields the pruning and quantization documents start with (``harness.run_fields``,
    the data and the settings)."""
    return {
        **harness.run_fields(
            section, command=command, quick=quick, started=started, seeds=seeds, machine_info=machine_info
        ),
        "data": data_label or data,
        "data_summary": data_summary(data, settings),
        "settings": settings.as_dict(),
        "settings_description": settings.describe(),
    }


def shared_options(stem, module):
    """Reads the flags every benchmark shares; raises ``app.UsageError`` for a bad one.

    Args:
        stem: The results' file stem, e.g. ``"pruning"``; a ``--quick`` run without
            ``--markdown`` writes its section to ``<output_dir>/<stem>_quick.md``.
        module: The benchmark's module, for the command line stated in its section.

    Returns:
        ``(data, seeds, tfmot, options)``: ``seeds`` is cut to the first under
        ``--quick``; ``options`` are the keyword arguments of ``run_benchmark``.
    """
    options = harness.options_from_flags(stem, module)
    tfmot = harness.tfmot_for(options.skip_tfmot)
    keywords = {
        "output_dir": options.output_dir,
        "markdown_path": options.markdown_path,
        "command": options.command,
        "data_label": options.data_label,
        "quick": options.quick,
        "tfmot_timeout_s": options.tfmot_timeout_s,
        "keep_files": options.keep_files,
    }
    return options.data, options.seeds, tfmot, keywords


def settings_from_flags(flag_values=flags.FLAGS):
    """The :class:`PruningSettings` the parsed flags ask for (``--quick``, ``--sparsities``,
    ``--end_step_epochs``, ``--frequency``); raises ``app.UsageError`` for a bad one."""
    sparsities = parse_sparsities(flag_values.sparsities)
    settings = PruningSettings.quick(sparsities) if flag_values.quick else PruningSettings.full(sparsities)
    overrides = {"end_step_epochs": flag_values.end_step_epochs, "frequency": flag_values.frequency}
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    settings = settings_from_flags()
    data, seeds, tfmot, options = shared_options(SECTION, "benchmarks.pruning")
    document = run_benchmark(data, seeds, settings, tfmot, **options)
    print(document["section"])


if __name__ == "__main__":
    app.run(main)
