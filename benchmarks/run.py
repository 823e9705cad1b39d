"""Every benchmark in one command, and one side-by-side table of kopt, tfmot and Keras.

Runs the per-technique benchmarks (``pruning``, ``quantization``, ``clustering``,
``distillation``, ``extras``), each a ``suite.Suite`` run through the one
``Suite.run_benchmark`` template and writing its own JSON, PNG and section as when
run alone, then reads their documents (``run_rows``), inspects and times every
``.tflite`` file of the run in one pass (``run_measure``) and writes the summary:
``<output_dir>/summary.json``, ``summary.png`` and the section between
``<!-- summary:begin -->`` and ``<!-- summary:end -->``, placed first in
BENCHMARKS.md. From the repository root::

    python -m benchmarks.run                       # everything, 3 seeds (57 minutes measured on 2 cores, 2026-11-24)
    python -m benchmarks.run --quick               # smoke run, under 10 minutes on 2 cores
    python -m benchmarks.run --only=pruning,extras --skip_tfmot --seeds=0

A ``--quick`` run writes ``*_quick.{json,png}`` files and ``summary_quick.md`` (every
section) in ``--output_dir`` and leaves BENCHMARKS.md alone unless ``--markdown``
is given. tfmot runs in its own virtual environment, created on first use
(``tfmot_env.py``); if it cannot be, its rows say "not run" and why.

The benchmarks run in this process, one after another, rather than as
subprocesses: they share one tfmot environment and one TensorFlow start, their
documents come back as Python objects, and their files stay on disk until the
one latency pass has timed all of them together, so each latency ratio divides
figures timed in the same rounds. Each benchmark's step-time ratios are already
measured within itself (technique and plain training in the same process). A
benchmark that raises becomes a "not run" row with the error, and the rest go on.
"""

import os
import time

# Before TensorFlow is imported (by the benchmarks, inside main).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import clustering  # noqa: E402
from benchmarks import distillation  # noqa: E402
from benchmarks import extras  # noqa: E402
from benchmarks import harness  # noqa: E402 - defines the flags every benchmark shares.
from benchmarks import machine  # noqa: E402
from benchmarks import pruning  # noqa: E402 - also defines --sparsities, --end_step_epochs, --frequency.
from benchmarks import quantization  # noqa: E402
from benchmarks import row_shape
from benchmarks import run_measure  # noqa: E402
from benchmarks import run_report  # noqa: E402
from benchmarks import run_rows  # noqa: E402
from benchmarks import tfmot_env  # noqa: E402

SECTION = "summary"


# Each suite's Suite (``suite.py``), in run order; one call runs any of them.
BENCHMARKS = {module.SECTION: module.SUITE for module in (pruning, quantization, clustering, distillation, extras)}
# Latency pass: every file of the run, the files taking turns.
LATENCY = {False: {"rounds": 5, "runs": 1000, "warmup": 50}, True: {"rounds": 2, "runs": 300, "warmup": 20}}
PRUNING_FLAGS = ("sparsities", "end_step_epochs", "frequency")

_ONLY = flags.DEFINE_list("only", list(BENCHMARKS), f"Benchmarks to run, any of {', '.join(BENCHMARKS)}.")
# --help lists the shared flags and the pruning benchmark's own, which this run passes on.
flags.adopt_module_key_flags(harness)
for _name in PRUNING_FLAGS:
    flags.declare_key_flag(_name)


def parse_only(values):
    """The benchmarks ``--only`` names, in their run order; ``app.UsageError`` for a bad name.

    >>> parse_only(["extras", "pruning"])
    ['pruning', 'extras']
    """
    unknown = [value for value in values if value not in BENCHMARKS]
    if unknown or not values:
        raise app.UsageError(
            f"--only must name one or more of {', '.join(BENCHMARKS)}. Received: --only={','.join(values)}"
        )
    return [name for name in BENCHMARKS if name in values]


def benchmark_command(name, seeds, *, quick, data_label, skip_tfmot, extra_flags=()):
    """The command that reruns one benchmark as this run ran it.

    >>> benchmark_command("extras", [0], quick=True, data_label="d.npz", skip_tfmot=False)
    'python -m benchmarks.extras --seeds=0 --quick --data=d.npz'
    """
    parts = [f"python -m benchmarks.{name}", f"--seeds={','.join(str(seed) for seed in seeds)}"]
    if quick:
        parts.append("--quick")
    if data_label != harness.DEFAULT_DATA:
        parts.append(f"--data={data_label}")
    if skip_tfmot and BENCHMARKS[name].uses_tfmot:
        parts.append("--skip_tfmot")
    return " ".join([*parts, *extra_flags])


def run_benchmarks(names, options, tfmot, *, flag_values, root):
    """Runs each benchmark in turn; returns ``(documents, failures)`` keyed by name."""
    documents, failures = {}, {}
    pruning_flags = [flag_values[name].serialize() for name in PRUNING_FLAGS if flag_values[name].present]
    for name in names:
        benchmark = BENCHMARKS[name]
        # A --quick run keeps the suite's quick seeds; one for a suite that alone keeps all it is given.
        seeds = options.seeds[: benchmark.quick_seeds or 1] if options.quick else options.seeds
        keywords = {
            "output_dir": options.output_dir,
            "markdown_path": options.markdown_path,
            "command": benchmark_command(
                name,
                seeds,
                quick=options.quick,
                data_label=options.data_label,
                skip_tfmot=options.skip_tfmot,
                extra_flags=pruning_flags if name == "pruning" else (),
            ),
            "data_label": options.data_label,
            "quick": options.quick,
            "tfmot_timeout_s": options.tfmot_timeout_s,
            "keep_files": True,  # The latency pass reads them; the run's folder is removed at the end.
            "workdir": os.path.join(root, name),
        }
        logging.info("benchmarks.%s: seeds %s", name, seeds)
        try:
            documents[name] = benchmark.run_benchmark(
                options.data, seeds, benchmark.settings(options.quick, flag_values), tfmot, **keywords
            )
        except Exception as err:  # noqa: BLE001 - its rows say "not run" with the error; the rest go on.
            logging.exception("benchmarks.%s failed", name)
            failures[name] = f"{type(err).__name__}: {str(err)[:300]}"
    return documents, failures


def versions_of_sides(tfmot):
    """The library versions of each side: ``{"kopt": text, "tfmot": text}``."""
    from benchmarks import kopt_side

    kopt = ", ".join(f"{name} {version}" for name, version in kopt_side.versions().items())
    if tfmot.available:
        tfmot_text = ", ".join(f"{name} {version}" for name, version in tfmot.versions.items())
    else:
        tfmot_text = f"{row_shape.NOT_RUN} ({tfmot.reason})"
    return {"kopt": kopt, "tfmot": tfmot_text}


def benchmark_lines(names, documents, failures):
    lines = []
    for name in BENCHMARKS:
        if name in documents:
            lines.append(f"`benchmarks.{name}`: {documents[name]['wall_time_s'] / 60:.1f} minutes, section below")
        elif name in failures:
            lines.append(f"`benchmarks.{name}`: failed: {failures[name]}")
        elif name not in names:
            lines.append(f"`benchmarks.{name}`: not selected (`--only`)")
    return lines


def run_all(names, options, tfmot, *, flag_values=flags.FLAGS):
    """Runs the benchmarks, the latency pass and writes the summary; returns its document."""
    started = time.time()
    machine_info = machine.describe_machine()
    os.makedirs(options.output_dir, exist_ok=True)
    workdir, owned = harness.make_workdir("kopt-benchmark-run-")
    documents, failures = run_benchmarks(names, options, tfmot, flag_values=flag_values, root=workdir)
    rows = run_rows.assemble(documents, failures)
    sides = versions_of_sides(tfmot)
    machine_line = machine.one_line(machine_info)
    for row in rows:
        # Each row states where it ran; Keras' and distillation's rows run on kopt's side.
        row.update(machine=machine_line, versions=sides["tfmot" if row["framework"] == "tfmot" else "kopt"])
    latency = run_measure.measure_files(rows, log=logging.info, **LATENCY[options.quick])
    run_report.summarize(rows)
    stem = harness.result_stem(SECTION, options.quick)
    plot_path = run_report.plot(rows, os.path.join(options.output_dir, f"{stem}.png"))
    document = {
        **harness.run_fields(
            SECTION,
            command=options.command,
            quick=options.quick,
            started=started,
            seeds=options.seeds,
            machine_info=machine_info,
        ),
        "data": options.data_label,
        "selected": names,
        "failures": failures,
        "versions_lines": {
            "kopt and Keras rows": sides["kopt"],
            "tfmot rows (own virtual environment, tf_keras)": sides["tfmot"],
        },
        "benchmark_lines": benchmark_lines(names, documents, failures),
        "results": {name: f"{harness.result_stem(name, options.quick)}.json" for name in documents},
        "latency_pass": latency,
        "plot": os.path.relpath(plot_path, os.path.dirname(os.path.abspath(options.markdown_path))),
        "rows": rows,
    }
    document["section"] = run_report.render_section(document)
    harness.write_outputs(document, os.path.join(options.output_dir, f"{stem}.json"), options.markdown_path, first=True)
    harness.finish_workdir(workdir, options.keep_files, owned=owned)
    return document


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    names = parse_only(_ONLY.value)
    given = [name for name in PRUNING_FLAGS if flags.FLAGS[name].present]
    if given and "pruning" not in names:
        raise app.UsageError(f"--{given[0]} is a flag of the pruning benchmark, which --only leaves out")
    # Each benchmark cuts the seeds for --quick itself; keep them all here.
    options = harness.options_from_flags(SECTION, "benchmarks.run", quick_seed_count=len(flags.FLAGS.seeds))
    pruning.settings_from_flags()  # Checks --sparsities before an hour of work.
    if any(BENCHMARKS[name].uses_tfmot for name in names):
        tfmot = harness.tfmot_for(options.skip_tfmot)
    else:
        tfmot = tfmot_env.TfmotEnv(python=None, reason="no selected benchmark runs tfmot")
    document = run_all(names, options, tfmot)
    print(document["section"])


if __name__ == "__main__":
    app.run(main)
