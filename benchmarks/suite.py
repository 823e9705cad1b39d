"""The one template every benchmark suite runs through, and the pieces of it suites share.

A suite module (``pruning``, ``quantization``, ``clustering``, ``distillation``,
``extras``) declares a :class:`Suite`: its settings, how it measures (its kopt
recipe and, where it has one, its tfmot worker), how it plots and renders its
rows. :meth:`Suite.run_benchmark` then runs it the same way for all of them:
measure every seed, write ``<output_dir>/<section>[_quick].{json,png}`` and the
section of the markdown file, remove or keep the exported files. Both
``python -m benchmarks.<suite>`` (:func:`main_for`) and ``benchmarks/run.py``
call it with the same arguments.
"""

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Callable

from absl import app
from absl import flags
from absl import logging

from benchmarks import harness
from benchmarks import machine
from benchmarks import tfmot_env
from benchmarks.core import data as core_data

__all__ = [
    "Suite",
    "data_fields",
    "framework_entry",
    "frameworks_of",
    "main_for",
    "measure_sides",
    "quick_or_full",
    "repo_data_fields",
    "run_tfmot_seed",
]

WORKERS_DIR = os.path.dirname(os.path.abspath(__file__))


def data_fields(data, data_label, settings):
    """The head of the pruning, quantization and extras documents: the data as given, and the settings."""
    return {
        "data": data_label or data,
        "data_summary": core_data.data_summary(data, settings.max_train_examples),
        "settings": settings.as_dict(),
        "settings_description": settings.describe(),
    }


def repo_data_fields(data, data_label, settings):
    """The head of the distillation document: the data relative to the repository, and the settings."""
    del data_label  # The path itself, relative to the repository, names the data.
    return {
        "data": os.path.relpath(data, harness.REPO_ROOT) if os.path.isabs(data) else data,
        "settings": settings.as_dict(),
        "settings_description": settings.describe(),
    }


@dataclasses.dataclass(frozen=True)
class Suite:
    """One benchmark suite, as the template runs it.

    Attributes:
        name: The module (``benchmarks.<name>``), section and file stem.
        settings: ``(quick, flag_values) -> settings``: what ``benchmarks/run.py`` runs.
        measure: ``(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s) ->
            fields``: runs every seed (kopt's recipe, tfmot's worker) and returns
            the document's figures.
        plot: ``(document, settings, path) -> path``: draws the document's figures;
            ``None`` for a suite without a figure.
        render: ``(document, settings) -> str``: the markdown section.
        head: ``(data, data_label, settings) -> fields`` the document starts with,
            after :func:`harness.run_fields`.
        uses_tfmot: Whether ``measure`` runs a tfmot worker.
        quick_seeds: How many seeds a ``--quick`` run keeps; ``None``: all it is given
            when run alone, one in ``benchmarks.run``.
        section_of: ``settings -> section name``; by default ``name``.
    """

    name: str
    settings: Callable
    measure: Callable
    plot: Callable | None
    render: Callable
    head: Callable = data_fields
    uses_tfmot: bool = False
    quick_seeds: int | None = 1
    section_of: Callable | None = None

    def section(self, settings):
        """The section (and file stem) of a run with ``settings``."""
        return self.section_of(settings) if self.section_of else self.name

    def run_benchmark(
        self,
        data,
        seeds,
        settings,
        tfmot=None,
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
        """Measures, then writes ``<section>[_quick].{json,png}`` and the markdown section.

        Args:
            data: Path of the MNIST-layout ``.npz`` archive.
            seeds: Training seeds, each run and reported.
            settings: The suite's settings (a dataclass with ``as_dict`` and ``describe``).
            tfmot: A :class:`tfmot_env.TfmotEnv`: where tfmot runs, or why it cannot
                (its cells then read "not run"); ignored by a suite without tfmot.
            output_dir: Folder for the JSON and PNG.
            markdown_path: Markdown file whose section is rewritten.
            command: The command line stated in the section.
            data_label: How the section names ``data``; defaults to the path.
            quick: Marks the section and file names as a smoke run.
            tfmot_timeout_s: Time limit of the tfmot worker per seed.
            keep_files: Keep the exported files.
            workdir: Folder for the exported files, kept; default: a temporary one,
                removed at the end unless ``keep_files``. Their paths are in the JSON.

        Returns:
            The JSON document written, with the rendered ``section``.
        """
        started = time.time()
        machine_info = machine.describe_machine()
        section = self.section(settings)
        stem = harness.result_stem(section, quick)
        os.makedirs(output_dir, exist_ok=True)
        workdir, owned = harness.make_workdir(f"kopt-{self.name}-benchmark-", workdir)
        if self.uses_tfmot and tfmot is None:
            tfmot = tfmot_env.TfmotEnv(python=None, reason="no tfmot environment was given")
        measured = self.measure(data, seeds, settings, tfmot, workdir=workdir, tfmot_timeout_s=tfmot_timeout_s)
        document = {
            **harness.run_fields(
                section, command=command, quick=quick, started=started, seeds=seeds, machine_info=machine_info
            ),
            **self.head(data, data_label, settings),
            **measured,
        }
        json_path = os.path.join(output_dir, f"{stem}.json")
        # The measurements first: a plot or section that fails must not lose an hour of training.
        harness.write_json(document, json_path)
        if self.plot:
            plot_path = self.plot(document, settings, os.path.join(output_dir, f"{stem}.png"))
            document["plot"] = os.path.relpath(plot_path, os.path.dirname(os.path.abspath(markdown_path)))
        document["section"] = self.render(document, settings)
        harness.write_outputs(document, json_path, markdown_path)
        harness.finish_workdir(workdir, keep_files, owned=owned)
        return document


def quick_or_full(settings_class):
    """``(quick, flag_values) -> settings``: ``settings_class.quick()`` for ``--quick``, else ``.full()``."""
    return lambda quick, _: settings_class.quick() if quick else settings_class.full()


def main_for(suite, settings_from_flags=None):
    """The ``main`` of ``python -m benchmarks.<suite>``: flags in, section printed.

    Args:
        suite: The :class:`Suite`.
        settings_from_flags: ``flag_values -> settings`` when the suite has flags of
            its own; by default ``suite.settings(--quick, flags)``. Raises
            ``app.UsageError`` for a bad flag, before any work.

    Returns:
        ``main(argv)`` for ``absl.app.run``.
    """

    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        flag_values = flags.FLAGS
        if settings_from_flags:
            settings = settings_from_flags(flag_values)
        else:
            settings = suite.settings(flag_values.quick, flag_values)
        quick_seeds = suite.quick_seeds or len(flag_values.seeds)
        options = harness.options_from_flags(
            suite.section(settings), f"benchmarks.{suite.name}", quick_seed_count=quick_seeds, flag_values=flag_values
        )
        tfmot = harness.tfmot_for(options.skip_tfmot) if suite.uses_tfmot else None
        document = suite.run_benchmark(options.data, options.seeds, settings, tfmot, **harness.keywords_of(options))
        print(document["section"])

    return main


def run_tfmot_seed(python, data, seed, settings, workdir, timeout_s, *, worker):
    """Runs a tfmot worker for one seed; returns its result, or ``{"error": why}``.

    ``worker`` is the script's file name in ``benchmarks/``, run with ``python``; it
    takes ``--data --seed --settings --output --workdir`` and writes its JSON
    result to ``--output``.
    """
    output = os.path.join(workdir, f"tfmot_seed{seed}.json")
    log_path = os.path.join(workdir, f"tfmot_seed{seed}.log")
    command = [
        python,
        os.path.join(WORKERS_DIR, worker),
        "--data",
        data,
        "--seed",
        str(seed),
        "--settings",
        json.dumps(settings.as_dict()),
        "--output",
        output,
        "--workdir",
        os.path.join(workdir, f"tfmot_seed{seed}"),
    ]
    logging.info("tfmot seed %d: running the worker (log %s)", seed, log_path)
    try:
        with open(log_path, "w", encoding="utf-8") as log_file:
            completed = subprocess.run(
                command,
                env=tfmot_env.legacy_keras_environ(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                cwd=harness.REPO_ROOT,
                check=False,
            )
    except subprocess.TimeoutExpired:
        return {"error": f"the worker ran past --tfmot_timeout_s={timeout_s}"}
    if completed.returncode != 0 or not os.path.isfile(output):
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = [line.strip() for line in f.read().splitlines() if line.strip()][-1:]
        return {"error": f"worker exit status {completed.returncode}: {' '.join(tail)[:200]}"}
    with open(output, encoding="utf-8") as f:
        return json.load(f)


def framework_entry(runs, reason=None):
    """A side's entry of the document from its seeds' runs: status, reason, runs, versions."""
    ok = [run for run in runs.values() if "error" not in run]
    entry = {
        "status": "ran" if ok else "not run",
        "reason": reason,
        "runs": runs,
        "versions": ok[0]["versions"] if ok else {},
    }
    if not ok and reason is None:
        entry["reason"] = "; ".join(sorted({run["error"] for run in runs.values()}))
    return entry


def measure_sides(
    data, seeds, settings, tfmot, *, kopt_run, worker, workdir, tfmot_timeout_s, score=None, after_seed=None
):
    """Runs kopt's recipe and tfmot's worker for every seed, kopt first; returns ``{side: {seed: run}}``.

    Args:
        data, seeds, settings, tfmot, workdir, tfmot_timeout_s: As :meth:`Suite.run_benchmark`.
        kopt_run: ``(data, seed, settings_dict, workdir, log=) -> run``: kopt's recipe for one seed.
        worker: The tfmot worker's file name.
        score: ``(run, x_test, y_test) -> run``: scores a side's files with the same
            code for both sides; a failure becomes that seed's error.
        after_seed: ``(seed, scored_runs) -> None``: called with each seed's scored runs
            (the quantization suite times them together).
    """
    if score:
        _, _, x_test, y_test = core_data.load_arrays(data)
    runs = {"kopt": {}, "tfmot": {}}
    for seed in seeds:
        runs["kopt"][str(seed)] = harness.result_or_error(
            f"kopt seed {seed}",
            kopt_run,
            data,
            seed,
            settings.as_dict(),
            os.path.join(workdir, f"kopt_seed{seed}"),
            log=logging.info,
        )
        if tfmot.available:
            runs["tfmot"][str(seed)] = run_tfmot_seed(
                tfmot.python, data, seed, settings, workdir, tfmot_timeout_s, worker=worker
            )
        if not score:
            continue
        scored = []
        for side, side_runs in runs.items():
            run = side_runs.get(str(seed))
            if run is None or "error" in run:
                continue
            try:
                scored.append(score(run, x_test, y_test))
            except Exception as err:  # noqa: BLE001 - reported as that seed's failure.
                logging.exception("%s seed %d: scoring failed", side, seed)
                side_runs[str(seed)] = {"error": f"scoring failed: {type(err).__name__}: {str(err)[:200]}"}
        if after_seed:
            after_seed(seed, scored)
    return runs


def frameworks_of(runs, tfmot):
    """The ``frameworks`` entry of a document from :func:`measure_sides`' runs."""
    return {
        "kopt": framework_entry(runs["kopt"]),
        "tfmot": framework_entry(runs["tfmot"], None if tfmot.available else tfmot.reason),
    }
