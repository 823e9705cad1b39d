"""One pass over every ``.tflite`` file of a ``benchmarks/run.py`` run: parameters and latency.

Every file is read with ``tflite_export.inspect`` (parameters and how many of them
are not zero) and timed with ``tflite_export.benchmark``: LiteRT interpreter,
XNNPACK on, 1 thread, batch 1. The files take turns, ``rounds`` times, and each
keeps the median of its rounds' medians, so a burst of other work on the machine
lands on one round of every file rather than on all rounds of one, and every
latency ratio divides two figures timed in the same rounds of the same process.
"""

import statistics
import time


def files_of(rows):
    """The distinct files of every seed record that has one, in table order."""
    found = []
    for row in rows:
        for figures in row["seeds"].values():
            path = figures.get("file")
            if path and "error" not in figures and path not in found:
                found.append(path)
    return found


def parameters(report):
    """``(parameters, nonzero)`` of an ``inspect`` report; ``nonzero`` is ``None`` if unknown."""
    tensors = [tensor for tensor in report["tensors"] if tensor["parameter"]]
    if any(tensor["zeros"] is None for tensor in tensors):
        return report["parameters"], None
    return report["parameters"], report["parameters"] - sum(tensor["zeros"] for tensor in tensors)


def measure_files(rows, *, rounds=5, runs=1000, warmup=50, log=print):
    """Adds ``params``, ``nonzero_params`` and ``latency_ms`` to every record with a file.

    Args:
        rows: Summary rows (``run_rows``); their records are updated in place.
        rounds: How many times every file is timed, the files taking turns.
        runs: Timed ``invoke()`` calls per file and round.
        warmup: Untimed calls before them.
        log: Called with one line of progress at a time.

    Returns:
        What was done: ``{"files", "rounds", "runs", "warmup", "threads",
        "batch_size", "xnnpack", "seconds"}``.
    """
    import tflite_export

    started = time.perf_counter()
    paths = files_of(rows)
    log(f"Inspecting and timing {len(paths)} files, {rounds} rounds of {runs} runs each")
    figures = {}
    for path in paths:
        params, nonzero = parameters(tflite_export.inspect(path))
        figures[path] = {"params": params, "nonzero_params": nonzero, "latency_rounds_ms": []}
    for _ in range(rounds):
        for path in paths:
            timed = tflite_export.benchmark(path, threads=1, runs=runs, warmup=warmup, batch_size=1, xnnpack=True)
            figures[path]["latency_rounds_ms"].append(timed["xnnpack"]["median_ms"])
    for path in paths:
        figures[path]["latency_ms"] = statistics.median(figures[path]["latency_rounds_ms"])
    for row in rows:
        for record in row["seeds"].values():
            if record.get("file") in figures and "error" not in record:
                record.update(figures[record["file"]])
    return {
        "files": len(paths),
        "rounds": rounds,
        "runs": runs,
        "warmup": warmup,
        "threads": 1,
        "batch_size": 1,
        "xnnpack": True,
        "seconds": time.perf_counter() - started,
    }
