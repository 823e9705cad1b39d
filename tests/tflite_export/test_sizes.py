"""tflite_export.file_sizes."""

import gzip

from tflite_export import file_sizes


def test_sizes_are_raw_and_gzip_level_9(tmp_path):
    data = bytes(range(256)) * 50 + bytes(5000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    sizes = file_sizes(path)
    assert sizes["bytes"] == len(data)
    assert sizes["gzip_bytes"] == len(gzip.compress(data, compresslevel=9, mtime=0))
    assert file_sizes(path) == sizes  # independent of the clock
