"""Atomic writes: all or nothing under the final name."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from tflite_export import atomic
from tflite_export.atomic import atomic_output_path
from tflite_export.atomic import atomic_write_bytes
from tflite_export.atomic import atomic_write_json
from tflite_export.atomic import remove_stale_temporaries


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


# --- Temporary files left by a writer killed outright (SIGKILL) ----------------

_KILLED_WRITER = """
import os, signal, sys
from tflite_export.atomic import atomic_output_path
with atomic_output_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"half")
        f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _temporaries(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


def _temporary_name(stem, suffix, host, pid, random="0123456789ab"):
    return f".{stem}.{host}-{pid}.{random}.tmp{suffix}"


def _killed_writer(target):
    """Runs a real child process killed by SIGKILL inside atomic_output_path(target)."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(target)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, stderr = child.communicate(timeout=120)  # also reaps it: no zombie keeps the pid alive
    assert child.returncode == -signal.SIGKILL, stderr.decode()
    return child.pid


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL and process probing are POSIX")
def test_a_temporary_left_by_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old")
    pid = _killed_writer(target)
    left = _temporaries(tmp_path)
    assert len(left) == 1 and re.fullmatch(rf"\.model\.[A-Za-z0-9_-]+-{pid}\.[0-9a-f]{{12}}\.tmp\.keras", left[0])
    assert (tmp_path / left[0]).read_bytes() == b"half"
    assert target.read_bytes() == b"old"  # the kill did not touch the target
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]


@pytest.mark.skipif(os.name == "nt", reason="process probing is POSIX")
def test_only_stale_temporaries_of_the_same_target_on_this_host_go(tmp_path):
    host = atomic._host_name()
    dead_pid = _killed_writer(tmp_path / "other.keras")  # a real pid that no longer runs
    (tmp_path / "other.keras").unlink(missing_ok=True)
    for name in _temporaries(tmp_path):
        os.remove(tmp_path / name)
    kept = [
        _temporary_name("model", ".keras", host, os.getpid()),  # a live writer: this process
        _temporary_name("other", ".keras", host, dead_pid),  # another target
        _temporary_name("model", ".h5", host, dead_pid),  # another suffix, another target
        _temporary_name("model", ".keras", f"{host}-1", dead_pid),  # another host, named like this one
        _temporary_name("model", ".keras", f"x{host}", dead_pid),  # another host
        _temporary_name("model", ".keras", host, dead_pid, random="NOT-HEX-ZZZZ"),  # not our pattern
        f".model.{host}-{dead_pid}.tmp.keras",  # no random part
        f"model.{host}-{dead_pid}.0123456789ab.tmp.keras",  # not hidden
    ]
    stale = [
        _temporary_name("model", ".keras", host, dead_pid),
        _temporary_name("model", ".keras", host, dead_pid, random="ba9876543210"),
    ]
    for name in kept + stale:
        (tmp_path / name).write_bytes(b"")
    removed = remove_stale_temporaries(tmp_path / "model.keras")
    assert removed == sorted(str(tmp_path / name) for name in stale)
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    atomic_write_bytes(tmp_path / "model.keras", b"x")  # nothing stale is left to remove
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["model.keras"])


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL and process probing are POSIX")
def test_a_directory_under_a_stale_temporary_name_is_kept(tmp_path):
    host = atomic._host_name()
    dead_pid = _killed_writer(tmp_path / "x.keras")
    for name in _temporaries(tmp_path):
        os.remove(tmp_path / name)
    directory = tmp_path / _temporary_name("model", ".keras", host, dead_pid)
    directory.mkdir()
    assert remove_stale_temporaries(tmp_path / "model.keras") == []
    assert directory.is_dir()


def test_temporary_names_read_back_the_writer_and_a_missing_directory_is_fine(tmp_path):
    seen = []
    with atomic_output_path(tmp_path / "report.v2.json") as tmp:
        seen.append(os.path.basename(tmp))
        with open(tmp, "wb") as f:
            f.write(b"{}")
    prefix, ending = ".report.v2.", ".tmp.json"
    assert seen[0].startswith(prefix) and seen[0].endswith(ending)
    match = atomic._WRITER_PATTERN.fullmatch(seen[0][len(prefix) : -len(ending)])
    assert match is not None and match.groups()[:2] == (atomic._host_name(), str(os.getpid()))
    assert re.fullmatch(r"[A-Za-z0-9_-]+", atomic._host_name())
    assert remove_stale_temporaries(tmp_path / "missing" / "a.bin") == []
    assert "remove_stale_temporaries" in atomic.__all__
