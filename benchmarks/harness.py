"""What every benchmark driver shares: flags, seeds, output paths, JSON and markdown, work folders.

The flags are defined here once, so every benchmark module can be imported into
one process: ``benchmarks/run.py`` runs them all in one and each still runs alone
(``python -m benchmarks.pruning``). A benchmark reads:

* ``--data``: the MNIST-layout ``.npz`` archive (relative: from the repository root);
* ``--seeds``: training seeds, each run and reported;
* ``--quick``: a smoke run, whose files are ``<output_dir>/<name>_quick.{json,png,md}``;
  BENCHMARKS.md is left alone unless ``--markdown`` is given;
* ``--output_dir``, ``--markdown``: where the JSON/PNG go and which markdown file
  gets the benchmark's section;
* ``--skip_tfmot``, ``--tfmot_timeout_s``: the tfmot side (``tfmot_env.py``);
* ``--keep_files``: keep the exported ``.tflite`` files.

Nothing here trains or imports TensorFlow.
"""

import dataclasses
import datetime
import json
import os
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

from benchmarks import machine
from benchmarks import markdown
from benchmarks import tfmot_env
from benchmarks.standalone import command_line

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join("..", "shared", "data", "mnist-22k.npz")
DEFAULT_MARKDOWN = "BENCHMARKS.md"

DATA = flags.DEFINE_string(
    "data", DEFAULT_DATA, "MNIST-layout .npz archive; a relative path is taken from the repository root."
)
SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds; every one is reported.")
QUICK = flags.DEFINE_bool(
    "quick",
    False,
    "Smoke run: reduced data and epochs, fewer seeds; writes <name>_quick.* files "
    "and leaves BENCHMARKS.md alone unless --markdown is given.",
)
SKIP_TFMOT = flags.DEFINE_bool("skip_tfmot", False, "Do not create or run the tfmot environment.")
OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", os.path.join("benchmarks", "results"), "Where the JSON and PNG go (relative: repository root)."
)
MARKDOWN = flags.DEFINE_string(
    "markdown", DEFAULT_MARKDOWN, "Markdown file whose sections are rewritten (relative: repository root)."
)
TFMOT_TIMEOUT_S = flags.DEFINE_integer(
    "tfmot_timeout_s", 3600, "Time limit for a tfmot worker, per seed.", lower_bound=1
)
KEEP_FILES = flags.DEFINE_bool("keep_files", False, "Keep the exported .tflite files (their folder is logged).")


@dataclasses.dataclass(frozen=True)
class Options:
    """The shared flags, checked and resolved.

    Attributes:
        data: Absolute path of the archive; ``data_label`` is how it was given.
        seeds: The seeds to run (already cut for ``--quick``).
        quick: Whether this is a smoke run.
        output_dir: Absolute folder for the JSON and PNG.
        markdown_path: The markdown file the section goes to.
        command: The command line as typed from the repository root.
        skip_tfmot, tfmot_timeout_s, keep_files: As the flags.
    """

    data: str
    data_label: str
    seeds: list
    quick: bool
    output_dir: str
    markdown_path: str
    command: str
    skip_tfmot: bool
    tfmot_timeout_s: int
    keep_files: bool


def from_root(path):
    """``path``, taken from the repository root when relative."""
    return path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)


def parse_seeds(values):
    """Parses ``--seeds``; raises ``app.UsageError`` for a non-integer or an empty list.

    >>> parse_seeds(["0", "2"])
    [0, 2]
    """
    try:
        seeds = [int(value) for value in values]
    except ValueError:
        raise app.UsageError(f"--seeds must be integers. Received: --seeds={','.join(values)}") from None
    if not seeds:
        raise app.UsageError("--seeds must name at least one seed. Received: --seeds=")
    if len(set(seeds)) != len(seeds):
        raise app.UsageError(f"--seeds must not repeat a seed. Received: --seeds={','.join(values)}")
    return seeds


def result_stem(section, quick):
    """The file stem of a benchmark's results: ``name`` or ``name_quick``."""
    return f"{section}_quick" if quick else section


def markdown_path_for(section, output_dir, *, quick, markdown_value=DEFAULT_MARKDOWN, markdown_given=False):
    """Where a benchmark's section goes.

    A smoke run must not replace the benchmark's figures unless asked to, so a
    ``--quick`` run without ``--markdown`` writes ``<output_dir>/<section>_quick.md``.

    >>> markdown_path_for("pruning", "/r", quick=True)
    '/r/pruning_quick.md'
    """
    if quick and not markdown_given:
        return os.path.join(output_dir, f"{result_stem(section, quick)}.md")
    return from_root(markdown_value)


def options_from_flags(section, module, *, quick_seed_count=1, flag_values=flags.FLAGS):
    """Reads the shared flags; raises ``app.UsageError`` for a bad one.

    Args:
        section: The benchmark's section and file stem, e.g. ``"pruning"``.
        module: The benchmark's module, for the command line in its section.
        quick_seed_count: How many of the seeds a ``--quick`` run keeps.
        flag_values: The parsed flags.

    Returns:
        An :class:`Options`.
    """
    seeds = parse_seeds(flag_values.seeds)
    if flag_values.quick:
        seeds = seeds[:quick_seed_count]
    data = from_root(flag_values.data)
    if not os.path.isfile(data):
        raise app.UsageError(f"--data={flag_values.data}: file not found ({os.path.abspath(data)})")
    output_dir = from_root(flag_values.output_dir)
    return Options(
        data=data,
        data_label=flag_values.data,
        seeds=seeds,
        quick=flag_values.quick,
        output_dir=output_dir,
        markdown_path=markdown_path_for(
            section,
            output_dir,
            quick=flag_values.quick,
            markdown_value=flag_values.markdown,
            markdown_given=flag_values["markdown"].present,
        ),
        command=command_line(sys.argv, module),
        skip_tfmot=flag_values.skip_tfmot,
        tfmot_timeout_s=flag_values.tfmot_timeout_s,
        keep_files=flag_values.keep_files,
    )


def keywords_of(options):
    """The keyword arguments of ``Suite.run_benchmark`` that :class:`Options` gives."""
    return {
        "output_dir": options.output_dir,
        "markdown_path": options.markdown_path,
        "command": options.command,
        "data_label": options.data_label,
        "quick": options.quick,
        "tfmot_timeout_s": options.tfmot_timeout_s,
        "keep_files": options.keep_files,
    }


def tfmot_for(skip):
    """The tfmot environment, created on first use, or why there is none (never raises)."""
    if skip:
        return tfmot_env.TfmotEnv(python=None, reason="skipped with --skip_tfmot")
    tfmot = tfmot_env.ensure_tfmot_env(log=logging.info)
    if not tfmot.available:
        logging.warning("tfmot will not run: %s", tfmot.reason)
    return tfmot


def run_fields(section, *, command, quick, started, seeds, machine_info):
    """The fields every benchmark's JSON document starts with: what ran, when, where."""
    return {
        "benchmark": section,
        "command": command,
        "quick": quick,
        "started_utc": datetime.datetime.fromtimestamp(started, datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "wall_time_s": time.time() - started,
        "seeds": list(seeds),
        "machine": machine_info,
        "machine_line": machine.one_line(machine_info, load_at_end=machine.load_average()),
    }


def write_outputs(document, json_path, markdown_path, *, first=False):
    """Writes ``document`` (less its ``section``) as JSON and its ``section`` into the markdown.

    Args:
        document: Holds ``benchmark`` (the section name) and ``section`` (markdown).
        json_path: Where the JSON goes (written through a temporary file).
        markdown_path: The markdown file; only this benchmark's section changes.
        first: Put a section the file does not have yet before every other one.
    """
    write_json(document, json_path)
    markdown.write_section(markdown_path, document["benchmark"], document["section"], first=first)
    logging.info("Wrote %s and the %r section of %s", json_path, document["benchmark"], markdown_path)


def write_json(document, json_path):
    """Writes ``document`` (less its ``section``) as JSON, through a temporary file."""
    temporary = json_path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump({key: value for key, value in document.items() if key != "section"}, f, indent=2)
    os.replace(temporary, json_path)


def result_or_error(what, function, *args, **keywords):
    """``function(*args, **keywords)``, or ``{"error": why}`` if it raises (the traceback is logged).

    A failing seed is reported in the benchmark's table and the run goes on.

    >>> result_or_error("seed 0", int, "x")["error"][:10]
    'ValueError'
    """
    try:
        return function(*args, **keywords)
    except Exception as err:  # noqa: BLE001 - any failure becomes the seed's "not run" reason.
        logging.exception("%s failed", what)
        return {"error": f"{type(err).__name__}: {str(err)[:200]}"}


def make_workdir(prefix, workdir=None):
    """Returns ``(folder, owned)``: ``workdir`` (created if needed), or a new temporary folder.

    ``owned`` says the caller made the folder and should remove it with
    :func:`finish_workdir`; a folder passed in belongs to whoever passed it.
    """
    if workdir is not None:
        os.makedirs(workdir, exist_ok=True)
        return workdir, False
    return tempfile.mkdtemp(prefix=prefix), True


def finish_workdir(workdir, keep_files, *, owned=True):
    """Removes the folder of exported files, or logs where it is kept."""
    if keep_files or not owned:
        logging.info("Exported files kept in %s", workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
