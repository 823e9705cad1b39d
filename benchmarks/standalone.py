"""What the benchmarks outside the ``Suite`` template share: command, machine line, publishing, kept rows.

The suites (``benchmarks.suite``) read the flags that ``benchmarks.harness`` defines
for all of them. The standalone benchmarks (``int8_latency``, ``int8_ops``,
``sparse_inference``, ``structured_speed``, ``depthwise_pruning``, ``low_bit``,
``transfer``, ``fused_lstm``, ``sequence_agreement``, ``zoo_agreement``, ``zoo``) each
define their own flags when run as a script, so they cannot import ``harness``; this
module defines no flag and gives them the same steps:

* :func:`stamp`: the command as it was typed and the machine it ran on;
* :func:`publish`: the JSON (atomically), the PNG beside it, the report printed and
  written as the benchmark's section of BENCHMARKS.md (:func:`publish_seeded_run`:
  the same where a ``--quick`` smoke run writes its own files and no section);
* :func:`check_choices`: a usage error that names the flag, the unknown values and the
  choices;
* :func:`kept_rows` / :func:`put_row`: the resumable benchmarks, whose JSON keeps the
  rows of earlier runs (other models, seeds or epochs) and gains one row at a time;
  :func:`run_rows` runs such a benchmark: its cases, the JSON after each, its section;
  :func:`run_model_seeds` is the command line of one measured per model and seed.
"""

import json
import os
import shlex
import sys

from absl import app

from benchmarks import machine
from benchmarks import markdown
from tflite_export.atomic import atomic_write_json

__all__ = [
    "check_choices", "command_line", "kept_rows", "publish", "publish_seeded_run", "put_row", "run_model_seeds",
    "run_rows", "stamp",
]  # fmt: skip


def command_line(argv, module):
    """The command as a person would type it from the repository root.

    >>> command_line(["x", "--quick"], "benchmarks.pruning")
    'python -m benchmarks.pruning --quick'
    """
    return " ".join([f"python -m {module}", *(shlex.quote(arg) for arg in argv[1:])]).strip()


def stamp(document, module, start_machine, argv=None):
    """Adds what ran and where to ``document``, in place, and returns it.

    Args:
        document: The benchmark's JSON document.
        module: The benchmark's module, e.g. ``"benchmarks.int8_latency"``.
        start_machine: ``machine.describe_machine()`` taken before the work began;
            the line also gives the load when the work ended.
        argv: The arguments as typed (default ``sys.argv``).

    >>> stamp({}, "benchmarks.low_bit", machine.describe_machine(), ["x", "--quick"])["command"]
    'python -m benchmarks.low_bit --quick'
    """
    document["command"] = command_line(sys.argv if argv is None else argv, module)
    document["machine"] = machine.one_line(start_machine, load_at_end=machine.load_average())
    return document


def publish(document, output, *, report, section=None, markdown_path=None, plot=None):
    """Writes a finished benchmark's results and returns its report.

    The JSON comes first, so that a failing plot or report loses no measurement.

    Args:
        document: The JSON document.
        output: The JSON path (written through a temporary file).
        report: ``report(document)`` gives the markdown section's body.
        section: The section of ``markdown_path`` to rewrite; None writes none.
        markdown_path: The markdown file (BENCHMARKS.md); None writes none.
        plot: ``plot(document, png_path)`` draws the PNG beside the JSON; None draws none.
    """
    atomic_write_json(output, document)
    if plot is not None:
        plot(document, os.path.splitext(output)[0] + ".png")
    body = report(document)
    print(body)
    if section and markdown_path:
        markdown.write_section(markdown_path, section, body)
    return body


def publish_seeded_run(document, name, *, quick, output_dir, markdown_path, report, plot=None):
    """:func:`publish` for a benchmark with a ``--quick`` smoke run: ``<output_dir>/<name>[_quick].json``.

    A smoke run's figures mean nothing, so it writes its own files and leaves the
    ``name`` section of ``markdown_path`` as it is.
    """
    return publish(
        document,
        os.path.join(output_dir, f"{name}{'_quick' if quick else ''}.json"),
        report=report,
        section=None if quick else name,
        markdown_path=markdown_path,
        plot=plot,
    )


def check_choices(flag, values, choices):
    """Raises ``app.UsageError`` naming ``--flag``, the values it does not know and the choices.

    >>> check_choices("cases", ["a"], ["a", "b"])
    >>> check_choices("cases", ["a", "c"], ["a", "b"])
    Traceback (most recent call last):
    ...
    absl.app.UsageError: --cases: unknown c; choose from a, b. Received: --cases=a,c
    """
    unknown = [value for value in values if value not in choices]
    if unknown:
        raise app.UsageError(
            f"--{flag}: unknown {', '.join(unknown)}; choose from {', '.join(choices)}. "
            f"Received: --{flag}={','.join(values)}"
        )


def kept_rows(path):
    """The rows of an earlier run's JSON at ``path``, or ``[]`` where there is none."""
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["rows"]


def put_row(rows, row, key):
    """``rows`` with ``row`` in place of any row of the same ``key(row)``, at the end.

    >>> put_row([{"seed": 0, "x": 1}, {"seed": 1, "x": 2}], {"seed": 0, "x": 3}, key=lambda r: r["seed"])
    [{'seed': 1, 'x': 2}, {'seed': 0, 'x': 3}]
    """
    return [kept for kept in rows if key(kept) != key(row)] + [row]


def run_rows(name, output, cases, measure, *, key, report, markdown_path=None):
    """Runs a resumable benchmark: a row per case, the JSON written after each, then its BENCHMARKS.md section.

    Args:
        name: The module under ``benchmarks`` (its command and its section's name).
        output: The results JSON, whose earlier rows (other cases) are kept.
        cases: ``cases(workdir)``: argument tuples, one per row, for ``measure``;
            ``workdir`` is a temporary folder for the files measured.
        measure: Returns one row (a dict) for ``*case``.
        key: A row's identity: a new row replaces an earlier one of the same key.
        report: The section's markdown for all rows.
        markdown_path: Where the section goes; default the repository's BENCHMARKS.md.

    Returns:
        All rows, earlier ones first.
    """
    import tempfile

    from absl import logging

    rows = kept_rows(output)
    with tempfile.TemporaryDirectory(prefix=f"kopt-{name}-") as workdir:
        for case in cases(workdir):
            row = measure(*case)
            logging.info("%s", row)
            rows = put_row(rows, row, key=key)
            atomic_write_json(output, {"command": f"python -m benchmarks.{name}", "rows": rows})
    body = report(rows)
    print(body)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    markdown.write_section(markdown_path or os.path.join(root, "BENCHMARKS.md"), name, body)
    return rows


def run_model_seeds(name, models, measure, report):
    """The command line of a resumable benchmark with a row per model and seed: ``--seeds``, ``--models``, ``--output``.

    Defines the three flags and runs :func:`run_rows` under ``absl.app``; call it
    from the benchmark's ``if __name__ == "__main__":``.

    Args:
        name: The module under ``benchmarks``; the JSON is ``benchmarks/results/<name>.json``.
        models: The model names ``--models`` chooses from (all by default).
        measure: ``measure(model, seed, workdir)`` returns one row with ``"model"`` and ``"seed"``.
        report: The section's markdown for all rows.
    """
    from absl import flags

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    flags.DEFINE_list("seeds", ["0"], "Seeds; every one is reported.")
    flags.DEFINE_list("models", list(models), "Models to measure.")
    flags.DEFINE_string("output", os.path.join(root, "benchmarks", "results", f"{name}.json"), "JSON results file.")

    def main(argv):
        del argv
        chosen = flags.FLAGS
        check_choices("models", chosen.models, list(models))
        run_rows(
            name,
            chosen.output,
            lambda workdir: [(model, int(seed), workdir) for model in chosen.models for seed in chosen.seeds],
            measure,
            key=lambda row: (row["model"], row["seed"]),
            report=report,
        )

    app.run(main)
