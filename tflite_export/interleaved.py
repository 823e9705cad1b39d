"""Latency of several ``.tflite`` files compared fairly: every file timed in turns, in every round.

:func:`tflite_export.benchmark` times one file; two files timed one after the other
see different machines (another process wakes up, the clock changes), which is
enough to flip a comparison of files a few percent apart. ``interleaved_latency``
builds one interpreter per file, then runs ``calls`` invocations of each in turn,
``rounds`` times; a file's figure is the median over rounds of its round's mean,
so every file sees the same conditions and a disturbed round is out-voted.

With ``amx=False`` the files are timed in a child process that refuses Intel
AMX (:func:`tflite_export.refuse_amx`), as XNNPACK runs on CPUs without it.

Example:

>>> import os, tempfile, keras
>>> from tflite_export.converter import convert
>>> folder = tempfile.mkdtemp()
>>> paths = {}
>>> for width in (2, 64):
...     model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(width)])
...     paths[width] = convert(model, os.path.join(folder, f"dense{width}.tflite"))
>>> times = interleaved_latency(paths, rounds=3, calls=20)
>>> sorted(times), all(value > 0 for value in times.values())
([2, 64], True)
"""

import json
import os
import time
from collections.abc import Hashable
from collections.abc import Mapping

import numpy as np

from tflite_export.amx import amx_state
from tflite_export.amx import request_without_amx
from tflite_export.amx import run_without_amx
from tflite_export.benchmark import _interpreter
from tflite_export.benchmark import _random_input

__all__ = ["interleaved_latency"]


def interleaved_latency(
    paths: Mapping[Hashable, str | os.PathLike],
    *,
    rounds: int = 7,
    calls: int = 100,
    threads: int = 1,
    xnnpack: bool = True,
    amx: bool = True,
    seed: int = 0,
) -> dict[Hashable, float]:
    """Milliseconds per ``invoke()`` of each file, batch 1, all files taking turns in every round.

    Args:
        paths: ``{key: path of a .tflite file}``; at least one.
        rounds: Rounds; the figure is the median over them. At least 1.
        calls: ``invoke()`` calls of each file per round, timed together. At least 1.
        threads: Interpreter threads; at least 1.
        xnnpack: ``True``: LiteRT's default XNNPACK delegate; ``False``: builtin kernels only.
        amx: ``False`` times in a child process that refuses Intel AMX, where the
            CPU has it; ``True`` times here.
        seed: Seed of the random inputs (as :func:`tflite_export.benchmark` makes them).

    Returns:
        ``{key: milliseconds}``, in the order of ``paths``.

    Raises:
        ValueError: Naming the argument, for an empty ``paths``, a path that is not
            a file, or a count below its minimum; before anything is timed.
    """
    for name, value in (("rounds", rounds), ("calls", calls), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer of at least 1. Received: {name}={value!r}")
    if not isinstance(paths, Mapping) or not paths:
        raise ValueError(f"paths must be a non-empty dict of {{key: .tflite path}}. Received: paths={paths!r}")
    missing = {key: os.fspath(path) for key, path in paths.items() if not os.path.isfile(path)}
    if missing:
        raise ValueError(f"paths names files that do not exist: {missing}")
    if not isinstance(amx, bool) or not isinstance(xnnpack, bool):
        raise ValueError(f"amx and xnnpack must be True or False. Received: amx={amx!r}, xnnpack={xnnpack!r}")
    settings = {"rounds": rounds, "calls": calls, "threads": threads, "xnnpack": xnnpack, "seed": seed}
    if not amx and amx_state() in ("available", "granted"):
        keys = list(paths)
        request = {"paths": [os.fspath(paths[key]) for key in keys], **settings}
        answer = run_without_amx("tflite_export.interleaved", request)
        return dict(zip(keys, answer, strict=True))
    return _time(paths, **settings)


def _time(paths, *, rounds, calls, threads, xnnpack, seed):
    interpreters = {}
    for key, path in paths.items():
        with open(path, "rb") as handle:
            interpreter = _interpreter(handle.read(), threads, xnnpack, 1)
        rng = np.random.default_rng(seed)
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], _random_input(detail, rng))
        interpreter.invoke()  # the first call applies the delegate: not timed
        interpreters[key] = interpreter
    per_round = {key: [] for key in interpreters}
    for _ in range(rounds):
        for key, interpreter in interpreters.items():
            start = time.perf_counter_ns()
            for _ in range(calls):
                interpreter.invoke()
            per_round[key].append((time.perf_counter_ns() - start) / 1e6 / calls)
    return {key: float(np.median(values)) for key, values in per_round.items()}


def _child_main():
    request = request_without_amx()
    paths = dict(enumerate(request.pop("paths")))
    times = _time(paths, **request)
    print(json.dumps([times[index] for index in range(len(paths))]))


if __name__ == "__main__":
    _child_main()
