"""An estimate of the tensor arena TFLite Micro needs for a ``.tflite`` file.

TFLite Micro keeps every activation in one arena that the application sizes in
advance (``uint8_t tensor_arena[N]``). Its planner gives each non-constant tensor
a place for as long as it lives, from the op that writes it to the last op that
reads it, and lets tensors that never live at the same time share bytes.
:func:`estimate_arena` does the same on the file's main graph: lifetimes from
the op order, then the largest tensors placed first at the lowest 16-byte-aligned
offset free for their whole lifetime (a greedy first fit, as TFLite Micro's
default planner does). The figure covers the activations; the interpreter adds
its own persistent data (op data, quantization parameters: typically a few KiB)
and some kernels a scratch buffer, so leave a margin and check with
``MicroInterpreter::arena_used_bytes()`` on the device.
"""

import os

import numpy as np

from tflite_export.inspect import inspect

__all__ = ["estimate_arena"]

_ALIGNMENT = 16
_ITEM_BYTES = {"bool": 1, "int4": 1}


def _bytes(tensor):
    shape = tensor["shape"]
    if any(int(dim) < 0 for dim in tensor.get("shape_signature") or shape):
        raise ValueError(
            f"Tensor {tensor['name']!r} has a dynamic shape {tensor.get('shape_signature')}; TFLite Micro plans "
            "static shapes. Convert with tflite_export.convert(..., batch_size=1)."
        )
    item = _ITEM_BYTES.get(tensor["dtype"]) or np.dtype(tensor["dtype"]).itemsize
    return int(np.prod(shape, dtype=np.int64)) * item


def _aligned(size):
    return -(-size // _ALIGNMENT) * _ALIGNMENT


def estimate_arena(tflite_path_or_bytes: str | os.PathLike | bytes) -> dict[str, int]:
    """Estimates the activation arena of a file with static shapes (see the module docstring).

    Args:
        tflite_path_or_bytes: The ``.tflite`` file or its bytes.

    Returns:
        A dict with ``arena_bytes`` (the planned arena), ``peak_op`` (the op
        index where the most bytes are live at once), ``live_bytes_at_peak``,
        ``tensors`` (how many were planned) and ``subgraphs`` (beyond the main
        graph, e.g. a recurrent loop's body, which this estimate leaves out).

    Raises:
        ValueError: For a file with a dynamic dimension (convert with
            ``batch_size=1``).

    Example:

    >>> import keras, os, tempfile, tflite_export
    >>> model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64), keras.layers.Dense(8)])
    >>> path = tflite_export.convert(model, os.path.join(tempfile.mkdtemp(), "m.tflite"), batch_size=1)
    >>> estimate_arena(path)["arena_bytes"]  # the input (128) and the hidden (256) bytes; the output reuses the input's
    384
    """
    report = inspect(tflite_path_or_bytes)
    ops = report["ops"]
    end = len(ops)
    lives = {}  # tensor id -> [first op, last op, bytes]

    def touch(tensor, index):
        if tensor is None or tensor.get("constant"):
            return
        entry = lives.setdefault(tensor["tensor"], [index, index, _bytes(tensor)])
        entry[0], entry[1] = min(entry[0], index), max(entry[1], index)

    for tensor in report["inputs"]:
        touch({**tensor, "constant": False}, -1)
    for index, op in enumerate(ops):
        for tensor in op["inputs"] + op["outputs"]:
            touch(tensor, index)
    for tensor in report["outputs"]:
        touch({**tensor, "constant": False}, end)
    placed = []  # (offset, size, first, last)
    for first, last, size in sorted(lives.values(), key=lambda item: -item[2]):
        size = _aligned(size)
        offset = 0
        for other_offset, other_size, other_first, other_last in sorted(placed):
            overlaps_in_time = not (last < other_first or other_last < first)
            if overlaps_in_time and offset < other_offset + other_size and other_offset < offset + size:
                offset = _aligned(other_offset + other_size)
        placed.append((offset, size, first, last))
    live = [sum(size for _, size, first, last in placed if first <= index <= last) for index in range(-1, end + 1)]
    peak = int(np.argmax(live)) - 1 if live else 0
    return {
        "arena_bytes": max((offset + size for offset, size, _, _ in placed), default=0),
        "peak_op": peak,
        "live_bytes_at_peak": max(live, default=0),
        "tensors": len(placed),
        "subgraphs": max(int(report.get("subgraphs") or 1) - 1, 0),
    }
