"""Quiet command lines: TensorFlow's and LiteRT's native start-up and info lines hidden.

TensorFlow's C++ side, the TFLite converter and the LiteRT interpreter write to
the process's standard error directly, below Python, so Python's logging cannot
filter them: the oneDNN banner at import, "All log messages before
absl::InitializeLog()", "NodeDef mentions attribute use_unbounded_threadpool",
"Created TensorFlow Lite XNNPACK delegate", the converter's "fully_quantize: ..."
summary. :func:`hide_native_noise` routes file descriptor 2 through a pipe and
drops the lines that match :data:`NOISE`; every other line, kopt's own logging and
any real error included, passes through unchanged. The command lines call it
unless ``--verbosity`` asks for more.
"""

import atexit
import os
import re
import sys
import threading

__all__ = ["NOISE", "hide_native_noise", "is_noise", "wants_verbose"]

NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"oneDNN custom operations are on",
        r"All log messages before absl::InitializeLog\(\) is called",
        r"cpu_feature_guard\.cc",
        r"^To enable the following instructions: .* rebuild TensorFlow",
        r"NodeDef mentions attribute use_unbounded_threadpool",
        r"Created TensorFlow Lite XNNPACK delegate",
        r"^fully_quantize: \d+, inference_type: ",
        r"Estimated count of arithmetic ops",
        r"TF-TRT Warning: Could not find TensorRT",
        r"Unable to register cu(DNN|FFT|BLAS) factory",
    )
)


def is_noise(line):
    """Whether ``line`` (text, without its newline) is one of :data:`NOISE`.

    Example:

    >>> is_noise("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    True
    >>> is_noise("kopt-optimize: error: --prune=2.0: must be in [0, 1)")
    False
    """
    return any(pattern.search(line) for pattern in NOISE)


def wants_verbose(argv):
    """Whether the command line asks for verbose output (``--verbosity`` >= 1 or ``-v``).

    Example:

    >>> wants_verbose(["kopt-optimize", "--verbosity=1"]), wants_verbose(["kopt-optimize", "--prune=0.5"])
    (True, False)
    """
    for index, argument in enumerate(argv):
        value = None
        if argument.startswith(("--verbosity=", "-v=")):
            value = argument.split("=", 1)[1]
        elif argument in ("--verbosity", "-v") and index + 1 < len(argv):
            value = argv[index + 1]
        if value is not None:
            try:
                return int(value) >= 1
            except ValueError:
                return True  # absl reports the bad value itself; show everything
    return False


def hide_native_noise():
    """Filters :data:`NOISE` out of this process's standard error, from now until exit.

    Also sets ``TF_CPP_MIN_LOG_LEVEL=2`` (TensorFlow's C++ info and warning lines)
    unless the environment already sets it. Call it before importing TensorFlow.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        original = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        return  # no usable descriptor 2 (an embedded interpreter): leave it as it is
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, original), name="kopt-stderr", daemon=True)
    forwarder.start()

    def restore():
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)  # closes the pipe's last write end: the forwarder drains it and stops
        forwarder.join(timeout=5)

    atexit.register(restore)


def _forward(read_end, original):
    with os.fdopen(read_end, "rb", buffering=0) as source:
        pending = b""
        while True:
            chunk = source.read(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = [line for line in lines if not is_noise(line.decode("utf-8", "replace"))]
            if kept:
                os.write(original, b"\n".join(kept) + b"\n")
        if pending and not is_noise(pending.decode("utf-8", "replace")):
            os.write(original, pending)
