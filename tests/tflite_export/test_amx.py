"""tflite_export.amx: the AMX state, the seccomp refusal, and benchmark(amx=False).

Each check that changes a process's AMX permission or installs the filter runs in
a child process: neither can be undone in the test process.
"""

import json
import os
import platform
import subprocess
import sys

import keras
import pytest

from tflite_export import amx
from tflite_export import benchmark
from tflite_export.converter import convert

_X86_LINUX = sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")


def _run(code):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# Asks Linux for the AMX tile state the way XNNPACK does; prints errno (0: granted).
_REQUEST = """
import ctypes
from tflite_export import amx
libc = amx._libc()
granted = libc.syscall(amx._SYS_ARCH_PRCTL, amx._ARCH_REQ_XCOMP_PERM, amx._XFEATURE_XTILEDATA, None) == 0
request_errno = 0 if granted else ctypes.get_errno()
"""


@pytest.mark.skipif(not _X86_LINUX, reason="the filter is written for Linux on x86-64")
def test_the_filter_refuses_only_the_amx_request_in_the_process_and_its_children():
    result = _run(
        "import ctypes, json, subprocess, sys\n"
        "from tflite_export import amx\n"
        "amx._install_filter()\n" + _REQUEST + "libc = amx._libc()\n"
        "mask = ctypes.c_uint64(0)\n"
        "supported = libc.syscall(amx._SYS_ARCH_PRCTL, amx._ARCH_GET_XCOMP_SUPP, ctypes.addressof(mask), None)\n"
        "child = subprocess.run([sys.executable, '-c', " + repr(_REQUEST + "print(request_errno)") + "],"
        " capture_output=True, text=True).stdout.strip()\n"
        "print(json.dumps({'request_errno': request_errno, 'supported': supported, 'child': child}))\n"
    )
    # EPERM from the filter; other arch_prctl calls still answer.
    assert result == {"request_errno": 1, "supported": 0, "child": "1"}


@pytest.mark.skipif(not _X86_LINUX, reason="the filter is written for Linux on x86-64")
def test_the_filter_covers_threads_that_existed_before_it():
    """TensorFlow and oneDNN run thread pools started before refuse_amx; any of them may ask for AMX."""
    result = _run(
        "import ctypes, json, threading\n"
        "from tflite_export import amx\n"
        "go, done, answer = threading.Event(), threading.Event(), {}\n"
        "def worker():\n"
        "    go.wait()\n"
        "    libc = amx._libc()\n"
        "    ok = libc.syscall(amx._SYS_ARCH_PRCTL, amx._ARCH_REQ_XCOMP_PERM, amx._XFEATURE_XTILEDATA, None) == 0\n"
        "    answer['errno'] = 0 if ok else ctypes.get_errno()\n"
        "    done.set()\n"
        "thread = threading.Thread(target=worker)\n"
        "thread.start()\n"
        "amx._install_filter()\n"
        "go.set()\n"
        "done.wait(30)\n"
        "print(json.dumps(answer))\n"
    )
    assert result == {"errno": 1}


def test_refuse_amx_where_the_cpu_has_it_and_does_nothing_where_it_has_not():
    result = _run(
        "import json, subprocess, sys\n"
        "from tflite_export import amx\n"
        "before = amx.amx_state()\n"
        "refused = amx.refuse_amx()\n"
        "again = amx.refuse_amx()\n" + _REQUEST + "child = subprocess.run([sys.executable, '-c', "
        "'from tflite_export import amx; print(amx.amx_state())'], capture_output=True, text=True).stdout.strip()\n"
        "print(json.dumps({'before': before, 'refused': refused, 'again': again, 'after': amx.amx_state(),"
        " 'request_errno': request_errno, 'child': child}))\n"
    )
    if result["before"] == "absent":
        assert (result["refused"], result["again"], result["after"], result["child"]) == (
            False,
            False,
            "absent",
            "absent",
        )
    else:
        assert result["before"] == "available"
        assert (result["refused"], result["again"], result["after"], result["child"]) == (
            True,
            True,
            "refused",
            "refused",
        )
        assert result["request_errno"] == 1


def test_a_process_that_holds_amx_cannot_refuse_it():
    result = _run(
        "import json\n" + _REQUEST + "state = amx.amx_state()\n"
        "try:\n    amx.refuse_amx()\n    error = None\nexcept RuntimeError as err:\n    error = str(err)\n"
        "print(json.dumps({'granted': granted, 'state': state, 'error': error}))\n"
    )
    if not result["granted"]:
        pytest.skip(f"this CPU or kernel has no AMX to grant (state {result['state']!r})")
    assert result["state"] == "granted"
    assert "already holds AMX tiles (amx_state()='granted')" in result["error"]


def test_without_x86_linux_there_is_no_amx(monkeypatch):
    monkeypatch.setattr(amx.platform, "machine", lambda: "aarch64")
    assert amx.amx_state() == "absent"
    assert amx.refuse_amx() is False
    assert os.environ.get(amx._MARKER) != "1" or amx.amx_state() == "absent"


@pytest.fixture(scope="module")
def int8_file(tmp_path_factory):
    import numpy as np

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten()])
    images = np.random.default_rng(0).random((8, 8, 8, 3), np.float32)
    path = str(tmp_path_factory.mktemp("amx") / "int8.tflite")
    return convert(model, path, mode="int8", representative_dataset=images)


def test_benchmark_says_whether_amx_applied_and_can_time_without_it(int8_file):
    here = benchmark(int8_file, runs=2, warmup=0, xnnpack=True)
    assert here["xnnpack"]["amx"] in amx.STATES
    without = benchmark(int8_file, runs=3, warmup=1, xnnpack=(True, False), amx=False)
    assert list(without) == ["xnnpack", "no_xnnpack"]
    assert without["xnnpack"]["runs"] == 3 and without["xnnpack"]["median_ms"] > 0
    # Timed in a child that refused it, or here if the CPU has none; never with AMX.
    assert {entry["amx"] for entry in without.values()} <= {"refused", "absent"}
    assert without["xnnpack"]["amx"] == ("absent" if amx.amx_state() == "absent" else "refused")


def test_benchmark_rejects_a_non_boolean_amx(int8_file):
    with pytest.raises(ValueError, match="amx must be True or False. Received: amx='no'"):
        benchmark(int8_file, amx="no")


def test_a_marker_without_the_filter_is_not_a_refusal():
    """The environment marker alone (copied into a process the filter does not cover) proves nothing."""
    result = _run(
        "import json, os\n"
        "from tflite_export import amx\n"
        "os.environ[amx._MARKER] = '1'\n"
        "print(json.dumps({'state': amx.amx_state()}))\n"
    )
    assert result["state"] in ("absent", "available", "granted")
