"""Intel AMX and XNNPACK's int8 kernels: see whether a process may use AMX, and refuse it.

On Xeon CPUs with Advanced Matrix Extensions (Sapphire Rapids and later),
XNNPACK runs int8 convolutions on AMX tiles once Linux grants the process the
tile state (``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``, which
XNNPACK asks for when it starts). A tile holds 16 rows of 64 bytes, and the
small layers of mobile networks (a few channels, small feature maps) fill little
of it, so there the int8 file can be slower than the float one. Measured on such
a Xeon (``benchmarks.int8_latency``, XNNPACK, 1 thread, batch 1):
MobileNetV2-0.35 at 96x96, kopt's int8 file ran at 1.27x the float file's time
with AMX and 0.92x with it refused, when XNNPACK uses its AVX512-VNNI kernels.
Phones (Arm), AMD CPUs and Intel CPUs without AMX never take the AMX path.

:func:`refuse_amx` makes the kernel refuse that request for every thread of the process
and every process it starts, so that XNNPACK falls back to its AVX512-VNNI
kernels. It installs a seccomp filter, which cannot be removed: call it first
thing in a serving or timing process, before any LiteRT interpreter is built.
It cannot take back a permission already granted (by XNNPACK, or by TensorFlow's
oneDNN, which took it during a float32 Keras ``fit`` on this project's Xeon), and
says so; a fresh process (``exec``) starts without it. Float32
kernels do not use AMX, so float files run as before.

Example:

>>> from tflite_export import amx
>>> amx.amx_state() in amx.STATES
True
"""

import ctypes
import errno
import json
import os
import platform
import struct
import subprocess
import sys

__all__ = ["STATES", "amx_state", "refuse_amx", "run_without_amx", "request_without_amx"]

STATES = ("absent", "available", "granted", "refused")
# Set by refuse_amx and inherited by child processes, which inherit the filter too.
_MARKER = "TFLITE_EXPORT_AMX_REFUSED"

_SYS_ARCH_PRCTL = 158  # x86-64
_ARCH_GET_XCOMP_SUPP = 0x1021
_ARCH_GET_XCOMP_PERM = 0x1022
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18
_AUDIT_ARCH_X86_64 = 0xC000003E
_PR_SET_NO_NEW_PRIVS = 38
_SYS_SECCOMP = 317  # x86-64
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_RET_ERRNO = 0x00050000


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.syscall.argtypes = [ctypes.c_long, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p]
    libc.prctl.restype = ctypes.c_int
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return libc


def _xcomp_mask(libc, query):
    mask = ctypes.c_uint64(0)
    if libc.syscall(_SYS_ARCH_PRCTL, query, ctypes.addressof(mask), None) != 0:
        return 0
    return mask.value


def amx_state() -> str:
    """Whether XNNPACK in this process can use AMX tiles for int8 work.

    Returns:
        One of :data:`STATES`: ``"absent"`` (not Linux on x86-64, or a CPU or
        kernel without AMX), ``"available"`` (the CPU has AMX and the process
        may still be granted it: XNNPACK will take it when it starts),
        ``"granted"`` (the process holds it) or ``"refused"`` (:func:`refuse_amx`
        ran in this process or a parent, and the process does not hold it).
    """
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return "absent"
    libc = _libc()
    tile = 1 << _XFEATURE_XTILEDATA
    if not _xcomp_mask(libc, _ARCH_GET_XCOMP_SUPP) & tile:
        return "absent"
    if _xcomp_mask(libc, _ARCH_GET_XCOMP_PERM) & tile:
        return "granted"
    return "refused" if os.environ.get(_MARKER) == "1" and _has_seccomp_filter() else "available"


def _has_seccomp_filter():
    """Whether a seccomp filter is on this process (a marker copied into an unfiltered process is stale)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            return any(line.split() == ["Seccomp:", "2"] for line in handle)
    except OSError:
        return False


def _filter_program():
    """A seccomp BPF program: ``arch_prctl(ARCH_REQ_XCOMP_PERM, ...)`` fails with EPERM, all else runs."""

    def statement(code, k):
        return struct.pack("=HBBI", code, 0, 0, k)

    def jump_if_equal(k, skip_if_true, skip_if_false):
        return struct.pack("=HBBI", 0x15, skip_if_true, skip_if_false, k)  # BPF_JMP | BPF_JEQ | BPF_K

    load_word = 0x20  # BPF_LD | BPF_W | BPF_ABS, offsets into struct seccomp_data
    give = 0x06  # BPF_RET | BPF_K
    return b"".join(
        (
            statement(load_word, 4),  # arch
            jump_if_equal(_AUDIT_ARCH_X86_64, 0, 4),
            statement(load_word, 0),  # syscall number
            jump_if_equal(_SYS_ARCH_PRCTL, 0, 2),
            statement(load_word, 16),  # low word of the first argument
            jump_if_equal(_ARCH_REQ_XCOMP_PERM, 1, 0),
            statement(give, _SECCOMP_RET_ALLOW),
            statement(give, _SECCOMP_RET_ERRNO | errno.EPERM),
        )
    )


def refuse_amx() -> bool:
    """Refuses AMX tiles to this process and its children, so XNNPACK uses its AVX512-VNNI int8 kernels.

    Irreversible for the process. Call it before the first LiteRT interpreter
    (and before TensorFlow runs bfloat16 or int8 work on the CPU).

    Returns:
        ``True`` if the refusal is in place (it already was, too), ``False`` if
        there is nothing to refuse (:func:`amx_state` is ``"absent"``).

    Raises:
        RuntimeError: If the process already holds AMX (``"granted"``): the
            kernel cannot take it back; or if the kernel rejects the filter.
    """
    state = amx_state()
    if state in ("absent", "refused"):
        return state == "refused"
    if state == "granted":
        raise RuntimeError(
            "refuse_amx: this process already holds AMX tiles (amx_state()='granted'), granted to XNNPACK "
            "or TensorFlow earlier, and Linux cannot take them back. Call refuse_amx() at the start of the "
            "process, before building any LiteRT interpreter."
        )
    _install_filter()
    os.environ[_MARKER] = "1"
    return True


class _Program(ctypes.Structure):
    """``struct sock_fprog``."""

    _fields_ = [("length", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _install_filter():
    """Installs :func:`_filter_program` on every thread of this process (TSYNC: TensorFlow's and oneDNN's
    threads that exist already too, any of which may ask for AMX) and on its future threads and children."""
    code = _filter_program()
    program = ctypes.create_string_buffer(code, len(code))
    header = _Program(len(code) // 8, ctypes.addressof(program))
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or (
        libc.syscall(_SYS_SECCOMP, _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC, ctypes.addressof(header)) != 0
    ):
        number = ctypes.get_errno()
        raise RuntimeError(
            f"refuse_amx: the kernel rejected the seccomp filter: {os.strerror(number)} (errno {number})."
        )


def run_without_amx(module: str, request: dict) -> dict:
    """Runs ``python -m module`` with ``request`` as JSON on its stdin; returns the JSON of its last line.

    The module's main reads the request with :func:`request_without_amx`, which refuses
    AMX first: a fresh process (``exec``) does not hold AMX even where this one does.

    Raises:
        RuntimeError: With the child's error output, if it fails.
    """
    done = subprocess.run([sys.executable, "-m", module], input=json.dumps(request), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the timing process without AMX failed ({module}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def request_without_amx() -> dict:
    """In a child of :func:`run_without_amx`: refuses AMX, then returns the request read from stdin."""
    refuse_amx()
    return json.loads(sys.stdin.read())
