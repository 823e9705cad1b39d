"""Binary and ternary weights: the maths, as plain ``keras.ops`` functions.

**Binary** (BinaryConnect, Courbariaux et al. 2015, with XNOR-Net's scale,
Rastegari et al. 2016). Each output channel ``c`` keeps two values:

    b(w) = alpha_c * sign(w),    alpha_c = mean_{i in c} |w_i|

with ``sign(0) = +1``. For a fixed sign pattern, ``alpha_c`` is the scale that
minimises ``||w_c - alpha * sign(w_c)||^2``.

**Ternary** (Ternary Weight Networks, Li et al. 2016). Each channel keeps three
values, ``{-alpha_c, 0, +alpha_c}``:

    delta_c = r * mean_{i in c} |w_i|                      (r = 0.7)
    t(w) = alpha_c * sign(w) * [|w| > delta_c]
    alpha_c = mean of |w_i| over the i in c with |w_i| > delta_c

``r = 0.7`` is TWN's approximation of the threshold that minimises the
squared error for Gaussian or uniform weights. Trained Ternary Quantization (Zhu
et al. 2017) learns the scale instead of computing it: every function here takes
a ``scale`` that replaces ``alpha_c``.

**Gradients.** ``sign`` and the threshold have zero gradient almost everywhere,
so the codes pass gradients straight through (the straight-through estimator,
Bengio et al. 2013) where ``|w| <= clip_value`` and stop them beyond, which is
BinaryConnect's "hard tanh" rule: weights that drift far past any flip point
stop moving. A computed ``alpha_c`` is a differentiable function of the weights
and gets its exact gradient, as in XNOR-Net; the threshold ``delta_c`` gets
none (it only picks which weights are zero).

``axis`` names the output-channel axis or axes, each slice along which gets its
own scale: ``-1`` for Conv1D/2D/3D and Dense kernels, ``(-2, -1)`` for a
DepthwiseConv2D kernel ``(h, w, in, multiplier)``, ``None`` for one scale for the
whole tensor.

Example:

>>> import numpy as np
>>> w = np.array([[0.5, -0.1], [-0.3, 0.2], [0.1, 0.0]], "float32")
>>> np.asarray(binarize(w), "float64").round(4).tolist()
[[0.3, -0.1], [-0.3, 0.1], [0.3, 0.1]]
>>> np.asarray(ternarize(w), "float64").round(4).tolist()
[[0.4, -0.15], [-0.4, 0.15], [0.0, 0.0]]
"""

from collections.abc import Sequence
from typing import Any

from keras import ops

__all__ = [
    "binarize", "binary_scale", "channel_shape", "sign_codes", "ternarize", "ternary_codes", "ternary_scale",
    "ternary_threshold",
]  # fmt: skip

TWN_THRESHOLD_RATIO = 0.7


def binarize(weights: Any, *, axis: int | Sequence[int] | None = -1, scale: Any = None, clip_value: float = 1.0) -> Any:
    """``alpha_c * sign(w)``: two values per output channel (see the module docstring).

    Args:
        weights: A float tensor (a kernel).
        axis: The output-channel axis or axes; ``None`` for one scale.
        scale: A learned ``alpha`` of :func:`channel_shape`, or ``None`` to use
            :func:`binary_scale`.
        clip_value: Gradients pass where ``|w| <= clip_value``.

    Returns:
        A tensor like ``weights``.

    Example:

    >>> import numpy as np
    >>> np.asarray(binarize(np.array([0.2, -0.4, 0.0], "float32"), axis=None), "float64").round(4).tolist()
    [0.2, -0.2, 0.2]
    """
    weights = ops.convert_to_tensor(weights)
    alpha = binary_scale(weights, axis=axis) if scale is None else scale
    return _broadcast(alpha, weights, axis) * sign_codes(weights, clip_value=clip_value)


def ternarize(
    weights: Any,
    *,
    axis: int | Sequence[int] | None = -1,
    threshold_ratio: float = TWN_THRESHOLD_RATIO,
    scale: Any = None,
    clip_value: float = 1.0,
) -> Any:
    """``alpha_c * sign(w) * [|w| > delta_c]``: three values per output channel.

    Args:
        weights: A float tensor (a kernel).
        axis: The output-channel axis or axes; ``None`` for one scale.
        threshold_ratio: ``r`` in ``delta_c = r * mean|w|``, in ``(0, 1)``.
        scale: A learned ``alpha`` of :func:`channel_shape`, or ``None`` to use
            :func:`ternary_scale`.
        clip_value: Gradients pass where ``|w| <= clip_value``.

    Returns:
        A tensor like ``weights``; zeros stay zero.

    Example:

    >>> import numpy as np
    >>> np.asarray(ternarize(np.array([0.9, -0.5, 0.1, 0.0], "float32"), axis=None), "float64").round(4).tolist()
    [0.7, -0.7, 0.0, 0.0]
    """
    weights = ops.convert_to_tensor(weights)
    threshold = ternary_threshold(weights, axis=axis, threshold_ratio=threshold_ratio)
    alpha = ternary_scale(weights, axis=axis, threshold_ratio=threshold_ratio) if scale is None else scale
    codes = ternary_codes(weights, _broadcast(threshold, weights, axis), clip_value=clip_value)
    return _broadcast(alpha, weights, axis) * codes


def binary_scale(weights: Any, *, axis: int | Sequence[int] | None = -1) -> Any:
    """XNOR-Net's ``alpha_c = mean |w|`` over each output channel, shaped as :func:`channel_shape`.

    Example:

    >>> import numpy as np
    >>> np.asarray(binary_scale(np.array([[1.0, -2.0], [-3.0, 0.0]], "float32"))).tolist()
    [2.0, 1.0]
    """
    weights = ops.convert_to_tensor(weights)
    return ops.mean(ops.abs(weights), axis=_reduced_axes(weights, axis))


def ternary_threshold(
    weights: Any, *, axis: int | Sequence[int] | None = -1, threshold_ratio: float = TWN_THRESHOLD_RATIO
) -> Any:
    """TWN's ``delta_c = r * mean |w|`` per output channel; a statistic, without gradient.

    Example:

    >>> import numpy as np
    >>> round(float(ternary_threshold(np.array([1.0, -3.0], "float32"), axis=None, threshold_ratio=0.5)), 4)
    1.0
    """
    _check_ratio(threshold_ratio)
    return ops.stop_gradient(threshold_ratio * binary_scale(weights, axis=axis))


def ternary_scale(
    weights: Any, *, axis: int | Sequence[int] | None = -1, threshold_ratio: float = TWN_THRESHOLD_RATIO
) -> Any:
    """TWN's ``alpha_c``: the mean ``|w|`` of the weights above the threshold (0 for a channel of zeros).

    Example:

    >>> import numpy as np
    >>> round(float(ternary_scale(np.array([0.9, -0.5, 0.1, 0.0], "float32"), axis=None)), 4)
    0.7
    """
    weights = ops.convert_to_tensor(weights)
    threshold = _broadcast(ternary_threshold(weights, axis=axis, threshold_ratio=threshold_ratio), weights, axis)
    magnitude = ops.abs(weights)
    kept = ops.greater(magnitude, threshold)
    # Selects between whole tensors: the TFLite converter folds them into the
    # kernel's constant range at any size, while it leaves a cast of the booleans
    # (or a select between scalars) unfolded above about a thousand weights, and
    # the file would then need TensorFlow's FakeQuant op.
    zeros = ops.zeros_like(magnitude)
    axes = _reduced_axes(weights, axis)
    total = ops.sum(ops.where(kept, magnitude, zeros), axis=axes)
    count = ops.sum(ops.where(kept, ops.ones_like(magnitude), zeros), axis=axes)
    # A channel with nothing above its threshold (all zeros) has scale 0, not 0 / 0.
    return total / ops.maximum(count, 1.0)


def sign_codes(weights: Any, *, clip_value: float = 1.0) -> Any:
    """``+1`` where ``w >= 0``, ``-1`` elsewhere; gradient 1 where ``|w| <= clip_value``, else 0.

    Example:

    >>> import numpy as np
    >>> np.asarray(sign_codes(np.array([0.3, 0.0, -2.0], "float32"))).tolist()
    [1.0, 1.0, -1.0]
    """
    return ternary_codes(weights, None, clip_value=clip_value)


def ternary_codes(weights: Any, threshold: Any, *, clip_value: float = 1.0) -> Any:
    """``sign(w)`` where ``|w| > threshold``, ``0`` elsewhere; straight-through gradient.

    Args:
        weights: A float tensor.
        threshold: A tensor broadcastable against ``weights``, or ``None`` for
            binary codes (:func:`sign_codes`).
        clip_value: Gradients pass where ``|w| <= clip_value``; a positive number.

    Example:

    >>> import numpy as np
    >>> np.asarray(ternary_codes(np.array([0.3, 0.05, -2.0], "float32"), 0.1)).tolist()
    [1.0, 0.0, -1.0]
    """
    if isinstance(clip_value, bool) or not isinstance(clip_value, (int, float)) or not clip_value > 0:
        raise ValueError(f"clip_value must be a number above 0. Received: clip_value={clip_value!r}")
    weights = ops.convert_to_tensor(weights)

    # A hand-written gradient rather than `x + stop_gradient(codes - x)`, whose
    # float sum would leave the codes a rounding error away from exactly +-1.
    @ops.custom_gradient
    def forward(values):
        positive = ops.greater_equal(values, 0.0)
        codes = ops.where(positive, ops.ones_like(values), -ops.ones_like(values))
        if threshold is not None:
            kept = ops.greater(ops.abs(values), ops.cast(threshold, values.dtype))
            codes = ops.where(kept, codes, ops.zeros_like(values))

        def backward(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return ops.where(ops.less_equal(ops.abs(values), clip_value), upstream, ops.zeros_like(upstream))

        return codes, backward

    return forward(weights)


def channel_shape(shape: Sequence[int], axis: int | Sequence[int] | None = -1) -> tuple[int, ...]:
    """The shape of a per-channel scale of a tensor of ``shape``: its ``axis`` dimensions.

    Example:

    >>> channel_shape((3, 3, 8, 2), (-2, -1)), channel_shape((4, 5)), channel_shape((4, 5), None)
    ((8, 2), (5,), ())
    """
    kept = _channel_axes(len(shape), axis)
    return tuple(int(shape[index]) for index in kept)


def _channel_axes(rank, axis):
    if axis is None:
        return ()
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if not axes or any(isinstance(a, bool) or not isinstance(a, int) or not -rank <= a < rank for a in axes):
        raise ValueError(
            f"axis must be None or axes of a rank-{rank} tensor (from {-rank} to {rank - 1}). Received: axis={axis!r}"
        )
    return tuple(sorted({a % rank for a in axes}))


def _reduced_axes(weights, axis):
    rank = len(weights.shape)
    kept = _channel_axes(rank, axis)
    return tuple(index for index in range(rank) if index not in kept)


def _broadcast(per_channel, weights, axis):
    """A per-channel tensor reshaped to broadcast against ``weights``."""
    rank = len(weights.shape)
    kept = _channel_axes(rank, axis)
    shape = [int(weights.shape[index]) if index in kept else 1 for index in range(rank)]
    return ops.reshape(ops.cast(per_channel, weights.dtype), shape)


def _check_ratio(threshold_ratio):
    if isinstance(threshold_ratio, bool) or not isinstance(threshold_ratio, (int, float)):
        raise ValueError(f"threshold_ratio must be a number in (0, 1). Received: threshold_ratio={threshold_ratio!r}")
    if not 0.0 < threshold_ratio < 1.0:
        raise ValueError(f"threshold_ratio must be a number in (0, 1). Received: threshold_ratio={threshold_ratio!r}")
