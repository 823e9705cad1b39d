"""Merges documents of several ``benchmarks.cifar`` runs into one section: networks or seeds run apart.

A full run (3 seeds, both networks, both sides) takes hours on 2 cores, so it can be
split: each part runs ``python -m benchmarks.cifar`` with its own ``--seeds``,
``--cifar_models``, ``--output_dir`` and ``--markdown``, and this script pools their
JSON documents, keeps every part's command, and writes the ``cifar`` section, its
JSON and PNG as one run would::

    python -m benchmarks.cifar_merge benchmarks/results/cifar_runs/*.json

Parts must agree on every training setting (the models, techniques and the
latency pass may differ), except the settings of :data:`PER_ROW`, which only the
rows that remain after the merge must agree on: a part that measured every
structured row again with longer fine-tuning replaces them all, and the section
states its recipe. A (network, side, seed) row given twice is refused,
except from the parts given after ``--newer``: those measured some rows again
after a change to kopt, and their rows replace the earlier parts' ones. The
section lists every replaced row and the command that measured it again::

    python -m benchmarks.cifar_merge benchmarks/results/cifar_runs/*_seed0.json \
        --newer benchmarks/results/cifar_runs/pcqat_rerun_seed0.json

A newer row's latency and step ratios are to the float row of another part, so
they come from two processes; its accuracy and size are its own. A newer part
that trained and timed its own float model (``--cifar_techniques=float32,...``)
keeps its ratios and drop in one process: its float rows do not replace the
section's, each of its rows carries them as ``float_reference``.
"""

import json
import os
import sys

from benchmarks import cifar_report
from benchmarks import harness
from benchmarks.cifar_settings import CifarSettings

__all__ = ["PER_ROW", "main", "merge"]

# Settings a part may choose on its own; every other must match.
_PER_PART = ("models", "techniques", "latency_rounds", "latency_calls")
# Settings that only some rows depend on: the merged rows of those techniques must agree on them.
PER_ROW = {
    "structured_epochs": (
        "float32_continued",
        "structured_30",
        "structured_50",
        "structured_latency",
        "structured_50_scratch",
    ),
    "structured_learning_rate": ("float32_continued", "structured_30", "structured_50", "structured_latency"),
    "structured_speedup": ("structured_latency",),
}


def _own_float_rows(part_rows, section_rows):
    """``{network: float row key}`` of a newer part's float rows that the section already has.

    Such a row is the part's own latency reference, timed in one pass with its other
    rows: it does not replace the section's float row (every other row's ratios are
    to that one), it goes with the part's rows as their ``float_reference``.
    """
    return {
        key.split("/", 1)[0]: key
        for key, row in part_rows.items()
        if key.endswith("/float32") and key in section_rows and "tflite_accuracy" in row
    }


def _reference(row):
    return {key: row[key] for key in ("tflite_accuracy", "ms", "ms_noamx", "train") if key in row}


def merge(documents, newer=()):
    """One document from the parts' documents.

    Args:
        documents: The parts' documents; no row may be in two of them.
        newer: Documents of parts that measured rows again; each of their rows
            replaces the same row of ``documents`` (or of an earlier ``newer``).

    Raises:
        ValueError: For parts whose training settings differ (naming the setting
            and both values; for a :data:`PER_ROW` setting, if rows that remain
            differ in it), or a row that two parts both measured.
    """
    if not documents:
        raise ValueError("merge needs at least one document. Received: documents=[]")
    count = len(documents)
    documents = [*documents, *newer]
    first = documents[0]
    merged = {
        **{key: value for key, value in first.items() if key not in ("frameworks", "plot")},
        "command": "; ".join(document["command"] for document in documents),
        "wall_time_s": sum(document["wall_time_s"] for document in documents),
        "quick": any(document["quick"] for document in documents),
        "parts": [
            {
                key: document[key]
                for key in ("command", "seeds", "machine_line", "noamx_command", "retime_command")
                if key in document
            }
            for document in documents
        ],
        "replaced": [],
        "added": [],
    }
    settings = dict(first["settings"])
    frameworks = {side: {**first["frameworks"][side], "runs": {}} for side in cifar_report.SIDES}
    origin = {}  # (side, seed, row) -> index of the document whose row remains
    for index, document in enumerate(documents):
        for key, value in document["settings"].items():
            if key not in _PER_PART and key not in PER_ROW and settings.get(key) != value:
                raise ValueError(
                    f"Parts differ in setting {key!r}: {settings.get(key)!r} against {value!r} "
                    f"(command {document['command']!r})."
                )
        for key in ("models", "techniques"):
            settings[key] = list(dict.fromkeys([*settings[key], *document["settings"][key]]))
        for side in cifar_report.SIDES:
            part = document["frameworks"][side]
            if part["status"] == "ran":
                frameworks[side].update(status="ran", reason=None, versions=part.get("versions", {}))
            for seed, run in part["runs"].items():
                rows = frameworks[side]["runs"].setdefault(seed, {"rows": {}})["rows"]
                references = _own_float_rows(run.get("rows", {}), rows) if index >= count else {}
                for key, row in run.get("rows", {}).items():
                    if key in references.values():
                        continue
                    if key in rows and index < count:
                        raise ValueError(f"Row {key!r} of {side} seed {seed} is in two parts.")
                    if index >= count:
                        # A newer part's row, new or replacing one: its ratios are to its own float row when the
                        # part timed one beside it, else to another process's.
                        reference = references.get(key.split("/", 1)[0])
                        if reference:
                            row = {**row, "float_reference": _reference(run["rows"][reference])}
                        merged["replaced" if key in rows else "added"].append(
                            {
                                "row": key, "side": side, "seed": int(seed), "command": document["command"],
                                "own_float": bool(reference),
                            }
                        )  # fmt: skip
                    rows[key] = row
                    origin[side, seed, key] = index
    for key, techniques in PER_ROW.items():
        values = {}
        for (side, seed, row), index in origin.items():
            if row.split("/", 1)[1] in techniques:
                values.setdefault(json.dumps(documents[index]["settings"].get(key)), []).append(
                    f"{row} ({side}, seed {seed})"
                )
        if len(values) > 1:
            raise ValueError(
                f"Rows trained with different {key!r} would be pooled: "
                + "; ".join(f"{value}: {', '.join(rows)}" for value, rows in values.items())
                + ". Measure them all again in one --newer part."
            )
        if values:
            settings[key] = json.loads(next(iter(values)))
    merged["settings"] = settings
    merged["seeds"] = sorted({seed for document in documents for seed in document["seeds"]})
    merged["frameworks"] = frameworks
    return merged


def main(argv):
    """``python -m benchmarks.cifar_merge [--section=NAME] PART.json... [--newer PART.json...]``.

    Writes the section (``cifar`` unless ``--section`` names another, for parts run
    with other training settings, such as ``--cifar_float_epochs``), its JSON and PNG.
    """
    arguments = argv[1:]
    section = cifar_report.SECTION
    if arguments and arguments[0].startswith("--section="):
        section, arguments = arguments[0].split("=", 1)[1], arguments[1:]
    paths, newer_paths = arguments, []
    if "--newer" in arguments:
        at = arguments.index("--newer")
        paths, newer_paths = arguments[:at], arguments[at + 1 :]
    if not section.isidentifier() or not paths or ("--newer" in arguments and not newer_paths):
        raise SystemExit(
            "usage: python -m benchmarks.cifar_merge [--section=NAME] PART.json [PART.json ...] "
            f"[--newer PART.json ...]. Received: {' '.join(argv[1:])}"
        )

    def read(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    document = merge([read(path) for path in paths], [read(path) for path in newer_paths])
    document["benchmark"] = section
    settings_values = {**document["settings"]}
    settings_values["models"] = tuple(settings_values["models"])
    settings_values["techniques"] = tuple(settings_values["techniques"])
    settings = CifarSettings(**settings_values)
    output_dir = os.path.join(harness.REPO_ROOT, "benchmarks", "results")
    stem = harness.result_stem(section, document["quick"])
    plot_path = cifar_report.plot(document, settings, os.path.join(output_dir, f"{stem}.png"))
    markdown_path = os.path.join(harness.REPO_ROOT, harness.DEFAULT_MARKDOWN)
    document["plot"] = os.path.relpath(plot_path, os.path.dirname(markdown_path))
    document["section"] = cifar_report.render(document, settings)
    harness.write_outputs(document, os.path.join(output_dir, f"{stem}.json"), markdown_path)
    print(document["section"])


if __name__ == "__main__":
    main(sys.argv)
