"""Atomic writes: all or nothing under the final name."""

import json
import os

import pytest

from kopt.utils import atomic_output_path
from kopt.utils import atomic_write_bytes
from kopt.utils import atomic_write_json


def test_write_bytes_and_json(tmp_path):
    path = tmp_path / "sub" / "a.bin"
    atomic_write_bytes(path, b"abc")
    assert path.read_bytes() == b"abc"
    atomic_write_json(tmp_path / "r.json", {"x": [1, 2]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": [1, 2]}


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_output_path(path) as tmp:
            assert tmp.endswith(".keras") and os.path.dirname(tmp) == str(tmp_path)
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_a_writer_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="produced no file"):
        with atomic_output_path(tmp_path / "x.bin"):
            pass
    assert os.listdir(tmp_path) == []
