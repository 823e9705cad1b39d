"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Every file kopt and tflite_export produce (trained models, ``.tflite`` exports, reports) goes through
here, so a crash or a full disk mid-write never leaves a truncated file under the
final name and never destroys the previous good copy.

A temporary file is named ``.{stem}.{host}-{pid}.{random}.tmp{suffix}`` beside its
target, so the writer can be read back from the name. A process killed outright
(``kill -9``, the out-of-memory killer) cannot remove its temporary file; the next
write to the same target removes it once that process is gone
(:func:`remove_stale_temporaries`).
"""

import contextlib
import json
import os
import re
import secrets
import socket
import stat

from absl import logging

__all__ = ["atomic_output_path", "atomic_write_bytes", "atomic_write_json", "remove_stale_temporaries"]

# ``{host}-{pid}.{random}``: the part of a temporary name between ``.{stem}.`` and
# ``.tmp{suffix}``. A sanitized host name holds no dot, so the stem of another
# target (``model`` against ``model.v2``) never matches.
_WRITER_PATTERN = re.compile(r"([A-Za-z0-9_-]+)-([0-9]+)\.([0-9a-f]{12})")
_RANDOM_BYTES = 6  # 12 hex characters


@contextlib.contextmanager
def atomic_output_path(path):
    """Yields a temporary path beside ``path``; renames it onto ``path`` on success.

    The temporary file keeps ``path``'s suffix, because writers such as
    ``keras.Model.save`` choose the format from it. On any exception the temporary
    file is removed and ``path`` is left as it was. Before writing, temporary files
    of the same target left by a process of this host that no longer runs are
    removed (see :func:`remove_stale_temporaries`).

    Args:
        path: The final file path. Its directory is created if missing.

    Yields:
        A path (str) in the same directory as ``path`` to write the content to.

    Example:

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "model.txt")
    >>> with atomic_output_path(target) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("weights")
    >>> open(target).read()
    'weights'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(path)
    tmp_path = _reserve_temporary(directory, *_stem_and_suffix(path))
    # Writers such as keras' saver refuse to overwrite, or treat an existing file
    # differently; they get a fresh name.
    os.remove(tmp_path)
    try:
        yield tmp_path
        if not os.path.exists(tmp_path):
            raise FileNotFoundError(f"The writer produced no file at {tmp_path!r} for {path!r}.")
        _fsync_file(tmp_path)
        os.replace(tmp_path, path)
        _fsync_directory(directory)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def atomic_write_bytes(path, data):
    """Writes ``data`` (bytes) to ``path`` atomically. Returns ``path``."""
    with atomic_output_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return os.fspath(path)


def atomic_write_json(path, obj):
    """Writes ``obj`` as indented JSON to ``path`` atomically. Returns ``path``."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(path):
    """Removes the temporary files of ``path`` whose writer died before finishing.

    A file is removed only if all of these hold: it sits in ``path``'s directory;
    its name is exactly ``.{stem}.{host}-{pid}.{random}.tmp{suffix}`` for ``path``'s
    stem and suffix; ``host`` is this machine's (sanitized) host name; no process
    ``pid`` runs any more; and it is a regular file. Temporary files of a running
    process, of another host (a shared file system), of other targets, and
    anything else are kept. Each removal is logged at INFO.

    On Windows, where a process cannot be probed without side effects, nothing is
    removed.

    Args:
        path: The final file path whose leftover temporaries to remove.

    Returns:
        The removed paths (str), sorted; empty if none, or if the directory does
        not exist.

    Example:

    >>> import os, tempfile
    >>> remove_stale_temporaries(os.path.join(tempfile.mkdtemp(), "model.keras"))
    []
    """
    path = os.fspath(path)
    if os.name == "nt":
        return []
    directory = os.path.dirname(os.path.abspath(path))
    stem, suffix = _stem_and_suffix(path)
    prefix, ending = f".{stem}.", f".tmp{suffix}"
    host = _host_name()
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in sorted(names):
        if not (name.startswith(prefix) and name.endswith(ending)) or len(name) <= len(prefix) + len(ending):
            continue
        match = _WRITER_PATTERN.fullmatch(name[len(prefix) : len(name) - len(ending)])
        if match is None or match.group(1) != host:
            continue
        pid = int(match.group(2))
        if _process_may_run(pid):
            continue
        candidate = os.path.join(directory, name)
        try:
            if not stat.S_ISREG(os.lstat(candidate).st_mode):
                continue
            os.remove(candidate)
        except FileNotFoundError:  # another writer of the same target removed it first
            continue
        except OSError as err:
            logging.warning("Could not remove stale temporary file %s: %s", candidate, err)
            continue
        logging.info(
            "Removed stale temporary file %s: its writer, process %d on this host, no longer runs.", candidate, pid
        )
        removed.append(candidate)
    return removed


def _stem_and_suffix(path):
    return os.path.splitext(os.path.basename(path))


def _host_name():
    """This machine's host name with every character outside [A-Za-z0-9_-] made ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "unknown_host"


def _reserve_temporary(directory, stem, suffix):
    """Creates a new empty temporary file for ``stem``/``suffix``; returns its path."""
    prefix = f".{stem}.{_host_name()}-{os.getpid()}."
    while True:
        candidate = os.path.join(directory, f"{prefix}{secrets.token_hex(_RANDOM_BYTES)}.tmp{suffix}")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate


def _process_may_run(pid):
    """False only when no process ``pid`` exists on this host; True when unsure."""
    if pid <= 0:
        return True  # 0 and below name process groups, not a process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, under another user
        return True
    except (OSError, OverflowError):
        return True
    return True


def _fsync_file(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_directory(directory):
    # Makes the rename itself durable; not every platform allows opening a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
