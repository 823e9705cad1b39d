"""Adds the AMX-refused latency pass to the kept files of CIFAR suite parts measured without it.

``benchmarks.cifar`` times each seed's files a second time in a process that
refuses Intel AMX (``cifar.time_without_amx``) when the CPU has it. Parts run
before that, with ``--keep_files``, still hold their files; this script times
them so, per seed and network, both sides in one interleaved pass, and writes
``ms_noamx`` into each row of the part's JSON document (atomically, in place)::

    python -m benchmarks.cifar_retime benchmarks/results/cifar_runs/*.json

A part that already has the figures, or whose files are gone, is left as it was
(the script says which). The merged section then reports the column for every
part that has it.
"""

import json
import os
import sys

from benchmarks import cifar
from benchmarks.cifar_settings import CifarSettings
from tflite_export.amx import amx_state
from tflite_export.atomic import atomic_write_json

__all__ = ["main", "retime"]


def retime(document, command):
    """Adds ``ms_noamx`` to every row of ``document`` whose file exists; returns the rows timed.

    Raises:
        ValueError: If a row's file is missing (the document is left unchanged), or
            the CPU has no AMX to refuse.
    """
    if amx_state() == "absent":
        raise ValueError("this CPU has no Intel AMX: the suite's own latency pass already ran as without it")
    settings = CifarSettings(
        **{**document["settings"], "models": tuple(document["settings"]["models"]), "techniques": ()}
    )
    groups = {}
    for side, framework in document["frameworks"].items():
        for seed, run in framework["runs"].items():
            for key, row in run.get("rows", {}).items():
                if "file" in row and "error" not in row:
                    groups.setdefault((seed, key.split("/", 1)[0]), {})[(side, key)] = row
    # A part the suite already timed so (after tflite_export.amx) keeps its own figures.
    groups = {group: rows for group, rows in groups.items() if any("ms_noamx" not in row for row in rows.values())}
    missing = [row["file"] for rows in groups.values() for row in rows.values() if not os.path.exists(row["file"])]
    if missing:
        raise ValueError(f"{len(missing)} file(s) of the part are gone, e.g. {missing[0]!r}")
    for rows in groups.values():
        cifar.time_without_amx(rows, settings)
    if groups:
        document["noamx_command"] = command
    return sum(len(rows) for rows in groups.values())


def main(argv):
    """``python -m benchmarks.cifar_retime PART.json...``."""
    paths = argv[1:]
    if not paths:
        raise SystemExit("usage: python -m benchmarks.cifar_retime PART.json [PART.json ...]")
    command = "python -m benchmarks.cifar_retime " + " ".join(paths)
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        try:
            count = retime(document, command)
        except ValueError as err:
            print(f"{path}: left as it was: {err}")
            continue
        if not count:
            print(f"{path}: every row already has its figure without AMX")
            continue
        atomic_write_json(path, document)
        print(f"{path}: {count} files timed without AMX")


if __name__ == "__main__":
    main(sys.argv)
