"""Fake quantization: the rounding TFLite's integer kernels do, simulated in float.

For ``num_bits`` bits the integer grid is ``[q_min, q_max]`` with ``q_min = 1`` if
``narrow_range`` (symmetric int8 weights use ``[-127, 127]``) else ``0``, and
``q_max = 2**num_bits - 1``. A float range ``[min, max]`` maps onto it with

    scale = (max - min) / (q_max - q_min)
    zero_point = clip(round(q_min - min / scale), q_min, q_max)

and the range is *nudged* to ``[(q_min - zero_point) * scale, (q_max - zero_point) *
scale]`` so that 0.0 is exactly representable, as TFLite requires. Values are
clipped to the nudged range and rounded to the nearest grid point:

    fake_quant(x) = round((clip(x) - nudged_min) / scale) * scale + nudged_min

The backward pass is the straight-through estimator: gradient 1 inside the
nudged range, 0 outside (Bengio et al. 2013; Jacob et al. 2018). ``min`` and ``max``
get no gradient: kopt's quantizers track ranges as statistics, not parameters.

On the TensorFlow backend the computation is TensorFlow's own
``FakeQuantWithMinMaxVars`` kernels: one fused pass forward and one backward,
where the same arithmetic in separate ``keras.ops`` kernels made QAT training
steps about 1.4x plain ones instead of about 1.1x. It is also exactly what the
TFLite converter reads quantization parameters from, so training and export share
one rounding. Other backends use :func:`reference_fake_quant`, the same formula in
``keras.ops`` with a hand-written straight-through gradient.
"""

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import keras
from keras import ops

__all__ = [
    "calibrating", "calibration_active", "divide_exactly", "fake_quant", "file_scale", "nudged_range", "reference_fake_quant", "sanitize_range",
    "tflite_lowering",
]  # fmt: skip

_MIN_RANGE_WIDTH = 1e-6
_LOWERING = threading.local()
_CALIBRATING = threading.local()


@contextlib.contextmanager
def calibrating():
    """Activation ranges learn from inference calls: the widest range seen (post-training calibration).

    Layers run as in inference (no dropout, no weight updates); only the range
    variables of the quantizers change. See :func:`kopt.quantization.calibrate`.

    Example:

    >>> calibration_active()
    False
    >>> with calibrating():
    ...     calibration_active()
    True
    """
    with _flag(_CALIBRATING):
        yield


def calibration_active():
    """Whether :func:`calibrating` is in effect on this thread."""
    return getattr(_CALIBRATING, "active", False)


@contextlib.contextmanager
def tflite_lowering() -> Iterator[None]:
    """Marks a trace as the graph the TFLite converter will read.

    ``tflite_export.convert`` traces quantization-aware models inside it. The
    numbers are the same as outside; layers only leave out fake-quantization the
    converter inserts itself (a requantization to a shared range), since it
    fails on two ``FakeQuant`` ops in a row.

    Example:

    >>> import numpy as np
    >>> with tflite_lowering():
    ...     y = fake_quant(np.array([0.3], "float32"), -1.0, 1.0)
    >>> round(float(y[0]), 4)
    0.298
    """
    with _flag(_LOWERING):
        yield


@contextlib.contextmanager
def _flag(store):
    """Sets ``store.active`` on this thread for the duration of a ``with`` block."""
    previous = getattr(store, "active", False)
    store.active = True
    try:
        yield
    finally:
        store.active = previous


def lowering_active():
    """Whether :func:`tflite_lowering` is in effect on this thread."""
    return getattr(_LOWERING, "active", False) and keras.backend.backend() == "tensorflow"


def sanitize_range(min_value, max_value):
    """Widens ``[min, max]`` to contain 0 and to have a positive width.

    TFLite needs 0.0 on the grid, and an empty range (a tensor that was always 0)
    would divide by zero. A range narrower than ``1e-6`` is widened to that width
    around its own centre, so a symmetric range (``[-0.0, 0.0]`` included) stays
    symmetric and keeps the zero point TFLite's symmetric kernels require.

    Example:

    >>> low, high = sanitize_range(0.0, 0.0)
    >>> float(low) == -float(high) > -1e-6
    True
    """
    min_value = ops.minimum(min_value, 0.0)
    max_value = ops.maximum(max_value, 0.0)
    # Growing both ends by half the shortfall keeps the centre, so 0 stays inside
    # (the centre of a range narrower than the minimum lies within half of it of 0).
    shortfall = ops.maximum(_MIN_RANGE_WIDTH - (max_value - min_value), 0.0)
    return min_value - 0.5 * shortfall, max_value + 0.5 * shortfall


def divide_exactly(numerator, denominator):
    """``numerator / denominator``, correctly rounded even inside a ``tf.function``.

    TensorFlow's graph optimizer rewrites a division by a constant into a
    multiplication by its reciprocal, which can differ in the last bit. Grid
    scales must equal the converter's bit for bit (the integer kernels multiply
    by them), so they divide with ``divide_no_nan``, which it leaves alone. The
    denominators here are never zero.

    Example:

    >>> import numpy as np
    >>> float(divide_exactly(np.float32(1.3369242), 255.0)) == float(np.float32(1.3369242) / np.float32(255.0))
    True
    """
    return ops.divide_no_nan(numerator, denominator)


def file_scale(min_value, max_value, *, num_bits=8, narrow_range=False):
    """The grid step the TFLite converter stores for a FakeQuant range.

    The converter computes ``(max - min) / (q_max - q_min)`` in float64 from the
    float32 ends and stores the result as float32; in float32 throughout, ``max -
    min`` already rounds, and the step can come out one unit in the last place
    off. The integer kernels multiply by the stored steps, so QAT code that
    reproduces their rounding (``kopt.quantization.integer_grid``) must use the
    same ones. Pass a sanitized range (:func:`sanitize_range`).

    Example:

    >>> import numpy as np
    >>> print(np.float32(file_scale(np.float32(-4.493624), np.float32(4.7302628))))
    0.036172107
    """
    steps = float(2**num_bits - 1 - (1 if narrow_range else 0))
    low = ops.cast(ops.convert_to_tensor(min_value), "float64")
    high = ops.cast(ops.convert_to_tensor(max_value), "float64")
    return ops.cast(divide_exactly(high - low, steps), "float32")


def nudged_range(min_value, max_value, *, num_bits=8, narrow_range=False):
    """Returns ``(nudged_min, nudged_max, scale)`` for a float range.

    Args:
        min_value: Lower end, a scalar or a per-channel vector.
        max_value: Upper end, same shape as ``min_value``.
        num_bits: Width of the integer grid, 2 to 16.
        narrow_range: Leave out the lowest grid value (``[-127, 127]`` for int8).

    Returns:
        The nudged ends and the grid step, with the shape of ``min_value``.

    Example:

    >>> lo, hi, scale = nudged_range(-1.0, 1.0, num_bits=8, narrow_range=True)
    >>> round(float(scale) * 127, 6), float(lo) == -float(hi)
    (1.0, True)
    """
    quant_min = 1.0 if narrow_range else 0.0
    quant_max = float(2**num_bits - 1)
    min_value = ops.convert_to_tensor(min_value, "float32")
    max_value = ops.convert_to_tensor(max_value, "float32")
    scale = divide_exactly(max_value - min_value, quant_max - quant_min)
    zero_point_from_min = quant_min - min_value / scale
    # TensorFlow rounds half away from zero here (std::round); zero_point_from_min
    # is never negative after clipping, so floor(x + 0.5) is the same.
    nudged_zero_point = ops.clip(ops.floor(zero_point_from_min + 0.5), quant_min, quant_max)
    nudged_min = (quant_min - nudged_zero_point) * scale
    nudged_max = (quant_max - nudged_zero_point) * scale
    return nudged_min, nudged_max, scale


def fake_quant(
    inputs: Any,
    min_value: Any,
    max_value: Any,
    *,
    num_bits: int = 8,
    narrow_range: bool = False,
    per_channel: bool = False,
    ties: str = "up",
) -> Any:
    """Quantizes and dequantizes ``inputs``, passing gradients straight through.

    Args:
        inputs: A float tensor.
        min_value: Lower end of the range: a scalar, or with ``per_channel`` a vector
            with one entry per slice of the last axis.
        max_value: Upper end, same shape as ``min_value``.
        num_bits: Width of the integer grid, 2 to 16.
        narrow_range: Leave out the lowest grid value (symmetric weights).
        per_channel: Whether ``min_value``/``max_value`` hold one range per slice of
            the last axis of ``inputs``.
        ties: How a value exactly half-way between two grid points rounds.
            ``"up"``: TensorFlow's ``FakeQuant`` rule, the one TFLite's integer
            kernels follow between layers. ``"even"``: ``round(x / scale)`` to the
            even neighbour, then the zero point, which is what LiteRT's XNNPACK
            ``QUANTIZE`` does to a float model input (and ``numpy.round``). Inputs
            made as ``x / 127.5 - 1`` from 8-bit images fall exactly on such ties,
            so the model-input quantizer must round like the runtime. Inside a
            :func:`tflite_lowering` trace both give the ``FakeQuant`` op the
            converter reads.

    Returns:
        A tensor like ``inputs`` whose values lie on the grid of the nudged range.

    Raises:
        ValueError: For ``num_bits`` outside 2 to 16, or ``ties`` other than
            ``"up"`` and ``"even"``.

    Example:

    >>> import numpy as np
    >>> x = np.array([-2.0, 0.1, 0.26, 3.0], "float32")
    >>> [round(float(v), 3) for v in fake_quant(x, -1.0, 1.0, num_bits=3, narrow_range=True)]
    [-1.0, 0.0, 0.333, 1.0]
    """
    if ties not in ("up", "even"):
        raise ValueError(f"ties must be 'up' or 'even'. Received: ties={ties!r}")
    inputs, min_value, max_value = _prepare(inputs, min_value, max_value, num_bits)
    if ties == "even" and not lowering_active():
        return _ties_to_even_fake_quant(inputs, min_value, max_value, num_bits, narrow_range)
    if keras.backend.backend() == "tensorflow":
        return _tensorflow_fake_quant(inputs, min_value, max_value, num_bits, narrow_range, per_channel)
    return _keras_fake_quant(inputs, min_value, max_value, num_bits, narrow_range)


def reference_fake_quant(inputs, min_value, max_value, *, num_bits=8, narrow_range=False, per_channel=False):
    """:func:`fake_quant` written in ``keras.ops``, for every backend.

    Same arguments and results as :func:`fake_quant`, up to float ties: a few
    elements in a thousand may land one grid step from TensorFlow's kernel, whose
    fused multiply-adds round differently. ``per_channel`` needs no special path
    here, as the ranges broadcast over the last axis.

    Example:

    >>> import numpy as np
    >>> x = np.array([-2.0, 0.1, 0.26, 3.0], "float32")
    >>> [round(float(v), 3) for v in reference_fake_quant(x, -1.0, 1.0, num_bits=3, narrow_range=True)]
    [-1.0, 0.0, 0.333, 1.0]
    """
    del per_channel  # Broadcasting handles both layouts.
    inputs, min_value, max_value = _prepare(inputs, min_value, max_value, num_bits)
    return _keras_fake_quant(inputs, min_value, max_value, num_bits, narrow_range)


def _prepare(inputs, min_value, max_value, num_bits):
    if isinstance(num_bits, bool) or not isinstance(num_bits, int) or not 2 <= num_bits <= 16:
        raise ValueError(f"num_bits must be an integer from 2 to 16. Received: num_bits={num_bits!r}")
    inputs = ops.convert_to_tensor(inputs)
    # Ranges are statistics in kopt, never trained through this op.
    min_value, max_value = (
        ops.stop_gradient(ops.cast(ops.convert_to_tensor(value), "float32")) for value in (min_value, max_value)
    )
    min_value, max_value = sanitize_range(min_value, max_value)
    return inputs, min_value, max_value


def _keras_fake_quant(inputs, min_value, max_value, num_bits, narrow_range):
    nudged_min, nudged_max, scale = nudged_range(min_value, max_value, num_bits=num_bits, narrow_range=narrow_range)
    outputs = _straight_through_round(ops.cast(inputs, "float32"), nudged_min, nudged_max, scale)
    return ops.cast(outputs, inputs.dtype)


def _ties_to_even_fake_quant(inputs, min_value, max_value, num_bits, narrow_range):
    nudged_min, nudged_max, scale = nudged_range(min_value, max_value, num_bits=num_bits, narrow_range=narrow_range)
    values = ops.cast(inputs, "float32")
    clipped = ops.minimum(ops.maximum(values, nudged_min), nudged_max)
    # The zero point is an integer, so rounding x / scale and adding it afterwards
    # differs from rounding (x - nudged_min) / scale only at ties, where the
    # runtime's order (and its half-to-even rule) decides.
    rounded = ops.clip(ops.round(values / scale), nudged_min / scale, nudged_max / scale) * scale
    # Straight through inside the range, as in fake_quant's other forms.
    outputs = clipped + ops.stop_gradient(rounded - clipped)
    return ops.cast(outputs, inputs.dtype)


def _straight_through_round(values, nudged_min, nudged_max, scale):
    # A hand-written gradient: one comparison and one select backward, where
    # autodiff through clip + stop_gradient costs about five more passes.
    @ops.custom_gradient
    def forward(values):
        clipped = ops.minimum(ops.maximum(values, nudged_min), nudged_max)
        # Same operation order as TensorFlow's kernel, so both give the same values.
        inverse_scale = 1.0 / scale
        rounded = ops.floor((clipped - nudged_min) * inverse_scale + 0.5) * scale + nudged_min

        def backward(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            # Inside the closed range clipping returns the value itself.
            return ops.where(ops.equal(clipped, values), upstream, ops.zeros_like(upstream))

        return rounded, backward

    return forward(values)


def _tensorflow_fake_quant(inputs, min_value, max_value, num_bits, narrow_range, per_channel):
    import tensorflow as tf  # Only the TensorFlow backend reaches here.

    values = tf.cast(inputs, tf.float32)
    if per_channel:
        outputs = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            values, min_value, max_value, num_bits=num_bits, narrow_range=narrow_range
        )
    else:
        outputs = tf.quantization.fake_quant_with_min_max_vars(
            values, min_value, max_value, num_bits=num_bits, narrow_range=narrow_range
        )
    return tf.cast(outputs, inputs.dtype)
