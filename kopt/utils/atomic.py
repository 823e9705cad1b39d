"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Every file kopt produces (trained models, ``.tflite`` exports, reports) goes through
here, so a crash or a full disk mid-write never leaves a truncated file under the
final name and never destroys the previous good copy.
"""

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_output_path(path):
    """Yields a temporary path beside ``path``; renames it onto ``path`` on success.

    The temporary file keeps ``path``'s suffix, because writers such as
    ``keras.Model.save`` choose the format from it. On any exception the temporary
    file is removed and ``path`` is left as it was.

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
    base = os.path.basename(path)
    stem, suffix = os.path.splitext(base)
    fd, tmp_path = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{suffix}", dir=directory)
    os.close(fd)
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
