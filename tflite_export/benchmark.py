"""Latency of a ``.tflite`` file in the LiteRT interpreter, with and without XNNPACK.

``benchmark`` times ``Interpreter.invoke()`` on random inputs of the file's own
dtypes and shapes (the batch dimension resized to ``batch_size``). The first
``warmup`` calls are not timed: they include the lazy application of the
XNNPACK delegate and cold caches. Figures depend on the machine and on whatever
else runs on it; compare files on one machine, in one process, one after another.

XNNPACK is LiteRT's default CPU delegate; "off" builds the interpreter with
``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``, so only the builtin
kernels run. Sparse (M:N or block) weights speed up only with XNNPACK, and only
where it recognizes the pattern.

On Xeon CPUs with AMX, XNNPACK's int8 kernels use AMX tiles, which are slower than
its AVX512-VNNI kernels for small layers (:mod:`tflite_export.amx`). Every entry
says which applied (``"amx"``: :func:`tflite_export.amx.amx_state` after timing),
and ``amx=False`` times in a fresh child process that refuses AMX, as XNNPACK
runs on CPUs without it.
"""

import json
import os
import tempfile
import time

import numpy as np

from tflite_export.amx import amx_state
from tflite_export.amx import request_without_amx
from tflite_export.amx import run_without_amx
from tflite_export.flatbuffer import read_tflite

_SETTINGS = {True: "xnnpack", False: "no_xnnpack"}


def benchmark(
    tflite_path_or_bytes: str | os.PathLike | bytes,
    *,
    threads: int = 1,
    runs: int = 50,
    warmup: int = 5,
    batch_size: int = 1,
    xnnpack: bool | tuple[bool, ...] = (True, False),
    seed: int = 0,
    amx: bool = True,
) -> dict[str, dict[str, float]]:
    """Measures median and 90th-percentile ``invoke()`` latency.

    Args:
        tflite_path_or_bytes: A path ending in ``.tflite``, or the file's bytes.
        threads: Interpreter threads (also used by XNNPACK); at least 1.
        runs: Timed ``invoke()`` calls per setting; at least 1.
        warmup: Untimed calls before them; at least 0.
        batch_size: The first dimension every input is resized to; at least 1.
            Inputs of rank 0 are left as they are.
        xnnpack: The settings to time: ``True`` (XNNPACK on), ``False`` (off), or
            a tuple of them, timed in that order.
        seed: Seed of the random inputs; both settings see the same inputs.
            Float inputs are standard normal, quantized integer inputs uniform over
            their type's range, and other integer inputs 0 or 1 (they are usually
            indices, which must stay in range).
        amx: ``False`` times in a child process that refuses Intel AMX
            (:func:`tflite_export.amx.refuse_amx`), unless there is none to
            refuse; ``True`` times here, where XNNPACK takes AMX if the CPU has it.

    Returns:
        ``{"xnnpack": entry, "no_xnnpack": entry}`` (only the settings asked for),
        each entry ``{"median_ms", "p90_ms", "min_ms", "runs", "warmup",
        "threads", "batch_size", "amx"}``, ``"amx"`` being the process's
        :func:`tflite_export.amx.amx_state` after timing.

    Raises:
        ValueError: For a bad argument or an unreadable file, before anything is
            timed, or if the inputs cannot be resized to ``batch_size``.

    Example:

    >>> import tempfile, os, keras
    >>> from tflite_export.converter import convert
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> path = convert(model, os.path.join(tempfile.mkdtemp(), "m.tflite"))
    >>> result = benchmark(path, runs=3, warmup=1, xnnpack=False)
    >>> list(result), result["no_xnnpack"]["runs"], result["no_xnnpack"]["median_ms"] > 0
    (['no_xnnpack'], 3, True)
    """
    for name, value, minimum in (
        ("threads", threads, 1),
        ("runs", runs, 1),
        ("warmup", warmup, 0),
        ("batch_size", batch_size, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer of at least {minimum}. Received: {name}={value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
    settings = (xnnpack,) if isinstance(xnnpack, bool) else xnnpack
    if (
        not isinstance(settings, (tuple, list))
        or not settings
        or not all(isinstance(setting, bool) for setting in settings)
        or len(set(settings)) != len(settings)
    ):
        raise ValueError(
            f"xnnpack must be True, False, or a tuple of distinct booleans such as (True, False). "
            f"Received: xnnpack={xnnpack!r}"
        )
    if not isinstance(amx, bool):
        raise ValueError(f"amx must be True or False. Received: amx={amx!r}")
    _, data = read_tflite(tflite_path_or_bytes)
    options = {"threads": threads, "runs": runs, "warmup": warmup, "batch_size": batch_size, "seed": seed}
    if not amx and amx_state() in ("available", "granted"):
        return _in_child_without_amx(data, list(settings), options)
    inputs = None
    results = {}
    for setting in settings:
        interpreter = _interpreter(data, threads, setting, batch_size)
        if inputs is None:
            rng = np.random.default_rng(seed)
            inputs = [(detail["index"], _random_input(detail, rng)) for detail in interpreter.get_input_details()]
        for index, values in inputs:
            interpreter.set_tensor(index, values)
        for _ in range(warmup):
            interpreter.invoke()
        timings_ms = np.empty(runs)
        for run in range(runs):
            start = time.perf_counter_ns()
            interpreter.invoke()
            timings_ms[run] = (time.perf_counter_ns() - start) / 1e6
        results[_SETTINGS[setting]] = {
            "median_ms": float(np.median(timings_ms)),
            "p90_ms": float(np.percentile(timings_ms, 90)),
            "min_ms": float(np.min(timings_ms)),
            "runs": runs,
            "warmup": warmup,
            "threads": threads,
            "batch_size": batch_size,
        }
    state = amx_state()
    return {setting: {**entry, "amx": state} for setting, entry in results.items()}


def _in_child_without_amx(data, settings, options):
    """``benchmark`` of ``data`` in a new Python process that refuses AMX before it builds an interpreter."""
    with tempfile.TemporaryDirectory(prefix="tflite-export-benchmark-") as workdir:
        path = os.path.join(workdir, "model.tflite")
        with open(path, "wb") as handle:
            handle.write(data)
        return run_without_amx("tflite_export.benchmark", {"path": path, "xnnpack": settings, **options})


def _child_main():
    request = request_without_amx()
    path, settings = request.pop("path"), tuple(request.pop("xnnpack"))
    print(json.dumps(benchmark(path, xnnpack=settings, amx=True, **request)))


def format_benchmark(results: dict[str, dict[str, float]]) -> str:
    """Renders a ``benchmark`` result as one line per setting.

    Example:

    >>> print(format_benchmark({"xnnpack": {"median_ms": 0.25, "p90_ms": 0.3, "min_ms": 0.2,
    ...     "runs": 50, "warmup": 5, "threads": 1, "batch_size": 1}}))
    xnnpack     median 0.250 ms  p90 0.300 ms  (50 runs, 1 thread, batch 1)
    """
    lines = []
    for setting, entry in results.items():
        threads = f"{entry['threads']} thread{'s' if entry['threads'] != 1 else ''}"
        amx = {"granted": ", AMX", "refused": ", AMX refused"}.get(entry.get("amx"), "")
        lines.append(
            f"{setting:<12}median {entry['median_ms']:.3f} ms  p90 {entry['p90_ms']:.3f} ms  "
            f"({entry['runs']} runs, {threads}, batch {entry['batch_size']}{amx})"
        )
    return "\n".join(lines)


def _interpreter(data, threads, use_xnnpack, batch_size):
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType

    resolver = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_content=data, num_threads=threads, experimental_op_resolver_type=resolver)
    for detail in interpreter.get_input_details():
        shape = [int(d) for d in detail["shape"]]
        if shape and shape[0] != batch_size:
            interpreter.resize_tensor_input(detail["index"], [batch_size] + shape[1:])
    try:
        interpreter.allocate_tensors()
    except RuntimeError as err:
        raise ValueError(
            f"the model's inputs cannot be resized to a batch of {batch_size} ({err}). "
            f"Received: batch_size={batch_size}"
        ) from err
    return interpreter


def _random_input(detail, rng):
    dtype = np.dtype(detail["dtype"])
    shape = [int(d) for d in detail["shape"]]
    scale, _ = detail["quantization"]
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind in "iu" and scale:
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    if dtype.kind in "iub":
        return rng.integers(0, 2, size=shape).astype(dtype)
    raise ValueError(f"benchmark cannot make random values for input {detail['name']!r}. Received: dtype={dtype.name}")


if __name__ == "__main__":
    _child_main()
