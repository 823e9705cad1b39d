"""M:N sparsity of a ``.tflite`` file: at least M zeros in every block of N weights.

The block check itself (:func:`check_blocks`) works on any weight array, so
``kopt.pruning.check_m_by_n`` uses it for Keras kernels too; this module reads the
weights of a file's ``FULLY_CONNECTED`` and ``CONV_2D`` ops. Blocks run along the
input-channel axis (tfmot's convention), and a quantized weight counts as zero
when it equals its zero point.
"""

import numpy as np

from tflite_export.flatbuffer import TFLiteFlatbuffer

__all__ = ["check_blocks", "check_file_m_by_n", "check_pattern", "m_by_n_result"]

WEIGHT_OPS = {"FULLY_CONNECTED": 1, "CONV_2D": 1}  # op -> index of its weights input


def check_pattern(m, n):
    """Raises ValueError unless ``m`` and ``n`` are integers with ``1 <= m < n``."""
    for name, value in (("m", m), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    if m >= n:
        raise ValueError(f"m must be smaller than n (m zeros per block of n). Received: m={m}, n={n}")


def check_blocks(name, values, axis, m, n, zero_point=0):
    """Counts the blocks of ``n`` weights along ``axis`` that hold fewer than ``m`` zeros.

    The last block of a row is padded with zeros when ``n`` does not divide its length.

    Returns:
        ``{"name", "shape", "axis", "blocks", "violating_blocks", "ok"}``.

    Example:

    >>> check_blocks("w", np.array([[0.0, 0.0, 1.0, 2.0], [0.0, 3.0, 4.0, 5.0]]), 1, 2, 4)["violating_blocks"]
    1
    """
    # Compared before moving the axis: a per-channel zero point broadcasts against
    # the stored layout.
    nonzero = np.moveaxis(np.asarray(values != zero_point), axis, -1)
    nonzero = nonzero.reshape(-1, nonzero.shape[-1])
    padding = (-nonzero.shape[1]) % n
    nonzero = np.pad(nonzero, ((0, 0), (0, padding)))
    per_block = nonzero.reshape(nonzero.shape[0], -1, n).sum(-1)
    violating = int(np.count_nonzero(per_block > n - m))
    return {
        "name": name,
        "shape": [int(d) for d in values.shape],
        "axis": int(axis),
        "blocks": int(per_block.size),
        "violating_blocks": violating,
        "ok": violating == 0,
    }


def m_by_n_result(checked, m, n):
    """The JSON-ready report of :func:`check_file_m_by_n` from ``check_blocks`` entries."""
    return {
        "m": m,
        "n": n,
        "convention": (
            f"at least {m} zeros (at most {n - m} non-zeros) in every block of {n} consecutive weights "
            "along the input-channel axis"
        ),
        "tensors": checked,
        "ok": bool(checked) and all(entry["ok"] for entry in checked),
    }


def check_file_m_by_n(tflite_path_or_bytes, m=2, n=4):
    """Checks every weights input of the file's ``FULLY_CONNECTED`` and ``CONV_2D`` ops.

    Returns:
        ``{"m", "n", "convention", "tensors", "ok"}``; ``ok`` is True when at least
        one such tensor exists and all pass.

    Raises:
        ValueError: For a bad ``m``/``n`` or an unreadable file.
    """
    check_pattern(m, n)
    model = TFLiteFlatbuffer(tflite_path_or_bytes, arg_name="tflite_path_or_model")
    checked = []
    for tensor_id, values in model.weights_of(WEIGHT_OPS):
        zero_point = model.zero_point(tensor_id, values.ndim)
        checked.append(check_blocks(model.name(tensor_id), values, values.ndim - 1, m, n, zero_point))
    return m_by_n_result(checked, m, n)
