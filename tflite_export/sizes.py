"""File size of an exported model, raw and gzipped.

Gzipped size is the figure that shows what pruning and clustering buy: zeros and
repeated values compress, even though the flatbuffer stores dense tensors.
"""

import gzip
import os


def file_sizes(path):
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
    # mtime=0 keeps the gzip header, and so the figure, independent of the clock.
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}
