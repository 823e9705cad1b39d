"""File size of an exported model, raw and gzipped.

Gzipped size is the figure that shows what pruning and clustering buy: zeros and
repeated values compress, even though the flatbuffer stores dense tensors.
"""

import gzip
import os

__all__ = ["byte_sizes", "file_sizes", "gzip_size"]


def gzip_size(data):
    """Bytes of ``data`` after gzip level 9, the figure every kopt size report uses.

    Example:

    >>> gzip_size(bytes(10_000)) < 100
    True
    """
    # mtime=0 keeps the gzip header, and so the figure, independent of the clock.
    return len(gzip.compress(bytes(data), compresslevel=9, mtime=0))


def byte_sizes(data):
    """``{"bytes", "gzip_bytes"}`` of bytes that are not in a file."""
    return {"bytes": len(data), "gzip_bytes": gzip_size(data)}


def file_sizes(path: str | os.PathLike) -> dict[str, int]:
    """Returns ``{"bytes": raw size, "gzip_bytes": size after gzip level 9}``.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "zeros.bin")
    >>> _ = open(path, "wb").write(bytes(10_000))
    >>> sizes = file_sizes(path)
    >>> sizes["bytes"], sizes["gzip_bytes"] < 100
    (10000, True)
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    return byte_sizes(data)
