"""Layer normalization as an int8 TFLite file computes it.

The converter runs a LayerNormalization that reads an int8 tensor as float ops,
except the first one: the MEAN over the features reads the int8 input and
writes an int8 mean on the input's own grid (same scale and zero point). The
variance and the output are then computed in float from that rounded mean. QAT
computes the same, so the trained model and the file agree; the rounding is
invisible in float but, divided by a small standard deviation, moves the
normalized output by several of the next layer's quantization steps.
"""

from keras import ops

__all__ = ["layer_norm_of", "layer_norm_on_grid"]


def layer_norm_on_grid(inputs, gamma, beta, *, axis, epsilon, round_mean):
    """Layer normalization whose mean is rounded by ``round_mean`` first.

    Args:
        inputs: The (already quantized) input tensor.
        gamma: Scale, or ``None``.
        beta: Offset, or ``None``.
        axis: The normalized axis or axes.
        epsilon: Added to the variance.
        round_mean: ``fn(mean) -> mean`` putting the mean on the input's grid.

    Returns:
        The normalized tensor, ``(x - m) / sqrt(mean((x - m)^2) + epsilon) * gamma + beta``
        with ``m = round_mean(mean(x))``.

    Example:

    >>> import numpy as np
    >>> x = np.array([[0.0, 1.0, 2.0, 3.0]], "float32")
    >>> out = layer_norm_on_grid(x, None, None, axis=-1, epsilon=0.0, round_mean=lambda m: m)
    >>> [round(float(v), 3) for v in out[0]]
    [-1.342, -0.447, 0.447, 1.342]
    """
    axes = [axis] if isinstance(axis, int) else list(axis)
    rank = len(inputs.shape)
    mean = round_mean(ops.mean(inputs, axis=axes, keepdims=True))
    variance = ops.mean(ops.square(inputs - mean), axis=axes, keepdims=True)
    inverse = ops.rsqrt(variance + epsilon)
    if gamma is not None:
        inverse = inverse * _broadcast(gamma, axes, rank, inputs.shape)
    outputs = inputs * inverse - mean * inverse
    if beta is not None:
        outputs = outputs + _broadcast(beta, axes, rank, inputs.shape)
    return outputs


def layer_norm_of(layer, inputs, quantizer, ranges):
    """``layer`` (a LayerNormalization) on ``inputs`` with its mean rounded to ``quantizer``'s grid."""
    return layer_norm_on_grid(
        inputs,
        layer.gamma.value if layer.scale else None,
        layer.beta.value if layer.center else None,
        axis=layer.axis,
        epsilon=layer.epsilon,
        round_mean=lambda mean: quantizer(mean, False, ranges),
    )


def _broadcast(value, axes, rank, shape):
    if sorted(a % rank for a in axes) == [rank - 1]:
        return value
    target = [1] * rank
    for a in axes:
        target[a] = shape[a]
    return ops.reshape(value, target)
