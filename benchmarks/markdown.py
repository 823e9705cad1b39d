"""Writes one benchmark's section of BENCHMARKS.md, leaving every other section alone.

Each benchmark owns the text between ``<!-- NAME:begin -->`` and
``<!-- NAME:end -->``; nothing else in the file is touched, so the figures there
are always exactly what the last run of that benchmark printed.
"""

import os
import re

HEADER = (
    "# kopt benchmarks\n"
    "\n"
    "Every section below is written by the benchmark script it names, from what that\n"
    "run measured; do not edit the figures by hand. Rerun the script to refresh them.\n"
)


def training_examples(max_train_examples):
    """How a settings description names the training data it used."""
    if max_train_examples is None:
        return "all training examples"
    return f"the first {max_train_examples} training examples"


def markers(name):
    """Returns the ``(begin, end)`` marker lines of section ``name``."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"section name must be a plain word. Received: name={name!r}")
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_section(text, name, body, *, first=False):
    """Returns ``text`` with section ``name`` holding ``body``.

    The section is appended at the end when the file has no markers for it yet,
    or, with ``first=True``, put before the first section of the file.

    Raises:
        ValueError: If the markers are unbalanced, duplicated or out of order;
            the file is then left for a person to repair rather than guessed at.
    """
    begin, end = markers(name)
    begin_count, end_count = text.count(begin), text.count(end)
    inner = f"{begin}\n{body.strip()}\n{end}"
    if begin_count == 0 and end_count == 0:
        found = re.search(r"^<!-- [A-Za-z0-9_]+:begin -->$", text, flags=re.MULTILINE) if first else None
        if found:
            return text[: found.start()] + inner + "\n\n" + text[found.start() :]
        return text.rstrip("\n") + "\n\n" + inner + "\n"
    if begin_count != 1 or end_count != 1:
        raise ValueError(f"expected one {begin!r} and one {end!r}; found {begin_count} and {end_count}")
    start, stop = text.index(begin), text.index(end)
    if stop < start:
        raise ValueError(f"{end!r} comes before {begin!r}")
    return text[:start] + inner + text[stop + len(end) :]


def write_section(path, name, body, *, header=HEADER, first=False):
    """Rewrites section ``name`` of the markdown file at ``path`` (created if missing).

    ``first`` puts a new section before the others (see :func:`replace_section`).
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    else:
        text = header
    updated = replace_section(text, name, body, first=first)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(updated)
    os.replace(temporary, path)
    return path


def opening_lines(document, title):
    """The lines a kopt-only section opens with: title, quick-run warning, command, data, settings.

    Args:
        document: Holds ``quick``, ``command``, ``wall_time_s``, ``machine_line``,
            ``data`` and ``settings_description`` (a list of lines).
        title: The section's heading, ``## ...`` included.

    Returns:
        The lines, ending with a blank one.
    """
    lines = [title, ""]
    if document["quick"]:
        lines += ["**Quick smoke run: too short to judge; the targets below are not meaningful.**", ""]
    return lines + [
        f"Command: `{document['command']}` ({document['wall_time_s'] / 60:.1f} min; {document['machine_line']}).",
        f"Data: `{document['data']}`.",
        "",
        *document["settings_description"],
        "",
    ]
