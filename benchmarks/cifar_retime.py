"""Adds the AMX-refused latency pass to the kept files of CIFAR suite parts measured without it, or times
a part's kept files again on a quiet machine.

``benchmarks.cifar`` times each seed's files a second time in a process that
refuses Intel AMX (``cifar.time_without_amx``) when the CPU has it. Parts run
before that, with ``--keep_files``, still hold their files; this script times
them so, per seed and network, both sides in one interleaved pass, and writes
``ms_noamx`` into each row of the part's JSON document (atomically, in place)::

    python -m benchmarks.cifar_retime benchmarks/results/cifar_runs/*.json

A part that already has the figures, or whose files are gone, is left as it was
(the script says which). The merged section then reports the column for every
part that has it.

With ``--both`` every kept file of the part is timed again, both passes (AMX as
it comes and AMX refused), per seed and network in one interleaved pass, and
both figures are replaced: for a part whose own passes ran while other work
loaded the machine. The document records the command as ``retime_command``,
and the merged section names it::

    python -m benchmarks.cifar_retime --both /tmp/part/cifar.json
"""

import json
import os
import sys

from benchmarks import cifar
from benchmarks.cifar_settings import CifarSettings
from tflite_export.amx import amx_state
from tflite_export.atomic import atomic_write_json

__all__ = ["main", "retime", "retime_both"]


def _settings(document):
    return CifarSettings(**{**document["settings"], "models": tuple(document["settings"]["models"]), "techniques": ()})


def _groups(document):
    """``{(seed, network): {(side, row key): row}}`` for every row of ``document`` that has a file."""
    groups = {}
    for side, framework in document["frameworks"].items():
        for seed, run in framework["runs"].items():
            for key, row in run.get("rows", {}).items():
                if "file" in row and "error" not in row:
                    groups.setdefault((seed, key.split("/", 1)[0]), {})[(side, key)] = row
    return groups


def _require_files(groups):
    missing = [row["file"] for rows in groups.values() for row in rows.values() if not os.path.exists(row["file"])]
    if missing:
        raise ValueError(f"{len(missing)} file(s) of the part are gone, e.g. {missing[0]!r}")


def retime(document, command):
    """Adds ``ms_noamx`` to every row of ``document`` whose file exists; returns the rows timed.

    Raises:
        ValueError: If a row's file is missing (the document is left unchanged), or
            the CPU has no AMX to refuse.
    """
    if amx_state() == "absent":
        raise ValueError("this CPU has no Intel AMX: the suite's own latency pass already ran as without it")
    settings = _settings(document)
    # A part the suite already timed so (after tflite_export.amx) keeps its own figures.
    groups = {
        group: rows for group, rows in _groups(document).items() if any("ms_noamx" not in row for row in rows.values())
    }
    _require_files(groups)
    for rows in groups.values():
        cifar.time_without_amx(rows, settings)
    if groups:
        document["noamx_command"] = command
    return sum(len(rows) for rows in groups.values())


def retime_both(document, command):
    """Times every kept file of ``document`` again, both passes, replacing ``ms`` and ``ms_noamx``; returns the
    rows timed.

    Raises:
        ValueError: If a row's file is missing (the document is left unchanged).
    """
    groups = _groups(document)
    _require_files(groups)
    settings = _settings(document)
    for rows in groups.values():
        cifar.time_rows(rows, settings)
    document["retime_command"] = command
    document.pop("noamx_command", None)  # both figures now come from this command
    return sum(len(rows) for rows in groups.values())


def main(argv):
    """``python -m benchmarks.cifar_retime [--both] PART.json...``."""
    both = "--both" in argv[1:]
    paths = [arg for arg in argv[1:] if arg != "--both"]
    if not paths:
        raise SystemExit("usage: python -m benchmarks.cifar_retime [--both] PART.json [PART.json ...]")
    command = "python -m benchmarks.cifar_retime " + " ".join(argv[1:])
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        try:
            count = (retime_both if both else retime)(document, command)
        except ValueError as err:
            print(f"{path}: left as it was: {err}")
            continue
        if not count:
            print(f"{path}: every row already has its figure without AMX")
            continue
        atomic_write_json(path, document)
        print(f"{path}: {count} files timed " + ("again, both passes" if both else "without AMX"))


if __name__ == "__main__":
    main(sys.argv)
