"""Latency with Intel AMX refused: ``benchmarks.core.latency``'s interleaved pass in a child process.

Outside ``benchmarks/core`` because it imports ``tflite_export`` (``refuse_amx``), which
the tfmot workers' environment does not have.
"""

import json

from benchmarks.core.latency import interleaved_ms
from benchmarks.core.latency import ready_interpreter

__all__ = ["interleaved_ms_without_amx"]


def interleaved_ms_without_amx(paths, *, rounds, calls, xnnpack=True):
    """:func:`interleaved_ms` of the files at ``paths`` (``{key: path}``) in a child process that refuses AMX.

    Returns:
        ``({key: milliseconds}, state)``: ``state`` is the child's
        :func:`tflite_export.amx.amx_state` (``"refused"``, or ``"absent"`` on a
        CPU without AMX).

    Raises:
        RuntimeError: With the child's error output, if it fails.
    """
    from tflite_export.amx import run_without_amx

    request = {"paths": dict(paths), "rounds": rounds, "calls": calls, "xnnpack": xnnpack}
    answer = run_without_amx("benchmarks.amx_latency", request)
    return answer["ms"], answer["amx"]


def _child_main():
    from tflite_export.amx import amx_state
    from tflite_export.amx import request_without_amx

    request = request_without_amx()
    interpreters = {key: ready_interpreter(path, xnnpack=request["xnnpack"]) for key, path in request["paths"].items()}
    ms = interleaved_ms(interpreters, rounds=request["rounds"], calls=request["calls"])
    print(json.dumps({"ms": ms, "amx": amx_state()}))


if __name__ == "__main__":
    _child_main()
