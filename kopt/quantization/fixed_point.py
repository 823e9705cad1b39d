"""TFLite's fixed-point arithmetic, and the int8 kernels built on it (hard swish, PReLU, leaky ReLU).

Some int8 kernels of TFLite do not rescale in float: they turn their scales
into 16-bit fixed-point multipliers with a power-of-two exponent when the model
is loaded, then compute on ``int16`` values with rounding high-half
multiplications (the ``SQRDMULH`` family of ARM). Their results differ from
the real function rounded once by a step on about one output in a hundred, so
a QAT model that rounds the real function drifts from its file. These
functions compute the kernels' integer steps with ``keras.ops`` on ``int32``
tensors (every intermediate fits), so QAT can round exactly as the file does.

PReLU's kernel rescales with TFLite's 32-bit multipliers instead, rounding
twice (:func:`multiply_by_quantized_multiplier`); those products need 48 bits,
so they are computed on ``float64``, which holds them exactly. Leaky ReLU runs
in XNNPACK with 8-bit multipliers (:func:`requantized_leaky_relu`).

Example:

>>> import numpy as np
>>> [int(v) for v in rounding_doubling_high_mul(np.array([1000, -1000], "int32"), 16384)]
[500, -500]
"""

import keras
from keras import ops

from kopt.quantization.fake_quant import divide_exactly

__all__ = [
    "doubling_high_mul", "exponent", "int16_multiplier", "multiply_by_quantized_multiplier", "requantized_hard_swish",
    "requantized_leaky_relu", "requantized_prelu", "rounding_divide_by_power_of_two", "rounding_doubling_high_mul",
]  # fmt: skip

_INT16_MIN, _INT16_MAX = -32768, 32767


def exponent(value):
    """``floor(log2(value))`` of a positive float32, exactly (as its exponent bits give it).

    Example:

    >>> import numpy as np
    >>> [int(v) for v in exponent(np.array([0.75, 1.0, 6.0], "float32"))]
    [-1, 0, 2]
    """
    value = ops.cast(value, "float32")
    guess = ops.cast(ops.floor(ops.log2(value)), "int32")
    # log2 may land a hair on the wrong side of a power of two; powers of two are exact.
    guess = ops.where(ops.power(2.0, ops.cast(guess, "float32")) > value, guess - 1, guess)
    return ops.where(ops.power(2.0, ops.cast(guess + 1, "float32")) <= value, guess + 1, guess)


def int16_multiplier(multiplier):
    """``(fixed, shift)`` with ``multiplier ~= fixed / 2**15 * 2**shift`` and ``fixed`` in ``[2**14, 2**15)``.

    TFLite first writes a positive float32 multiplier as a 32-bit fraction in
    ``[0.5, 1)`` and an exponent, then rounds the fraction to 16 bits (half
    up, saturating at ``2**15 - 1``). A float32 has 24 significant bits, so the
    32-bit fraction is exact and only the 16-bit rounding matters.

    Example:

    >>> import numpy as np
    >>> fixed, shift = int16_multiplier(np.float32(0.375))
    >>> int(fixed), int(shift)
    (24576, -1)
    """
    multiplier = ops.cast(multiplier, "float32")
    shift = exponent(multiplier) + 1
    fraction = multiplier / ops.power(2.0, ops.cast(shift, "float32"))  # exact: a power of two
    fixed = ops.minimum(ops.floor(fraction * 32768.0 + 0.5), float(_INT16_MAX))
    return ops.cast(fixed, "int32"), shift


def _truncating_divide_by_2_15(value):
    """``value / 2**15`` rounded towards zero, as C's integer division rounds."""
    magnitude = ops.floor_divide(ops.abs(value), 32768)
    return ops.where(value < 0, -magnitude, magnitude)


def rounding_doubling_high_mul(a, b):
    """``round(a * b / 2**15)`` of two int16 values (ties away from zero), saturating ``-2**15 * -2**15``."""
    a, b = ops.cast(a, "int32"), ops.cast(b, "int32")
    product = a * b
    nudge = ops.where(product >= 0, 1 << 14, 1 - (1 << 14))
    result = _truncating_divide_by_2_15(product + nudge)
    return ops.where((a == b) & (a == _INT16_MIN), _INT16_MAX, result)


def doubling_high_mul(a, b):
    """``a * b / 2**15`` of two int16 values, rounded towards zero, saturating ``-2**15 * -2**15``."""
    a, b = ops.cast(a, "int32"), ops.cast(b, "int32")
    result = _truncating_divide_by_2_15(a * b)
    return ops.where((a == b) & (a == _INT16_MIN), _INT16_MAX, result)


def rounding_divide_by_power_of_two(value, shift):
    """``value / 2**shift`` rounded to nearest, ties away from zero (``shift >= 0``, a tensor or an int)."""
    value = ops.cast(value, "int32")
    divisor = ops.cast(ops.power(2.0, ops.cast(shift, "float32")), "int32")
    floor = ops.floor_divide(value, divisor)
    remainder = value - floor * divisor
    threshold = ops.floor_divide(divisor - 1, 2) + ops.cast(value < 0, "int32")
    return floor + ops.cast(remainder > threshold, "int32")


def _saturating_left_shift(value, shift):
    """``value * 2**shift`` clipped to int16 (``0 <= shift``; past 16 every nonzero value saturates)."""
    factor = ops.cast(ops.power(2.0, ops.cast(ops.minimum(shift, 16), "float32")), "int32")
    return ops.clip(ops.clip(value, _INT16_MIN, _INT16_MAX) * factor, _INT16_MIN, _INT16_MAX)


def requantized_hard_swish(x, x_scale, output_scale):
    """``x * relu6(x + 3) / 6`` (hard swish) as TFLite's int8 HARD_SWISH kernel computes it.

    ``x`` lies on the grid of step ``x_scale``; the result lies on the grid of
    step ``output_scale``, before clipping to the output's range (the output's
    quantizer clips). The kernel takes the input on a finer scale (``2**7``
    times), multiplies it once by the fixed-point output multiplier, and once
    by a "relu-ish" multiplier that maps ``[-3, 3]`` onto ``[-1, 1]``
    (saturating), shifts that to ``[0, 1]``, and multiplies the two, the last
    product rounded towards zero. XNNPACK leaves this op to TFLite's own
    kernel, so this is what a LiteRT file runs.

    Example:

    >>> import numpy as np
    >>> step = np.float32(1 / 32)
    >>> [float(v) for v in requantized_hard_swish(np.array([-1.0, 0.0, 2.0], "float32"), step, step)]
    [-0.34375, 0.0, 1.65625]
    """
    dtype = ops.convert_to_tensor(x).dtype
    x_scale, output_scale = (ops.cast(ops.stop_gradient(s), "float32") for s in (x_scale, output_scale))
    x = ops.cast(x, "float32")
    fine_scale = x_scale / 128.0  # exact: a power of two
    output_fixed, output_shift = int16_multiplier(fine_scale / output_scale)
    relu_fixed, relu_shift = int16_multiplier(divide_exactly(fine_scale, 3.0 / 32768.0))
    fine = ops.cast(ops.round(x / x_scale), "int32") * 128
    on_output_scale = rounding_doubling_high_mul(fine, output_fixed)
    # [-3, 3] onto [-1, 1] in Q15: a left shift saturates in two parts, so that
    # only the last bit can saturate; a right shift rounds.
    left = ops.maximum(relu_shift - 1, 0)
    relu = ops.where(relu_shift > 0, _saturating_left_shift(fine, left), fine)
    relu = rounding_doubling_high_mul(relu, relu_fixed)
    relu = ops.where(relu_shift > 0, _saturating_left_shift(relu, ops.ones_like(relu_shift)), relu)
    relu = ops.where(relu_shift < 0, rounding_divide_by_power_of_two(relu, ops.maximum(-relu_shift, 0)), relu)
    relu = ops.floor_divide(relu + 32768, 2)  # [-1, 1] onto [0, 1]
    steps = rounding_divide_by_power_of_two(doubling_high_mul(relu, on_output_scale), ops.maximum(-output_shift, 0))
    outputs = ops.cast(steps, "float32") * output_scale
    exact = keras.activations.hard_silu(x)
    return ops.cast(exact + ops.stop_gradient(outputs - exact), dtype)


def multiply_by_quantized_multiplier(steps, multiplier):
    """``steps * multiplier`` as TFLite's ``MultiplyByQuantizedMultiplier`` rounds it (two roundings).

    TFLite writes a positive float32 ``multiplier`` as a 31-bit fraction in
    ``[0.5, 1)`` times ``2**shift`` (exact for a float32). The integer ``steps``
    are shifted left by a positive ``shift``, multiplied by the fraction with a
    rounding high-half product (ties away from zero), and divided by ``2**-shift``
    for a negative one, rounding again (ties away from zero): a value within
    ``2**(shift - 32)`` steps of a tie may round the other way than the real
    product would. Integer ``steps`` up to ``2**17`` in magnitude are exact.

    Example:

    >>> import numpy as np
    >>> # 1972 * 0.0032955 is 6.4988, which rounds to 6; the high half product
    >>> # rounds 1663.75 to 1664 = 6.5 * 256 first, and 6.5 rounds away to 7.
    >>> [int(v) for v in multiply_by_quantized_multiplier(np.array([-1972.0, 10.0]), np.float32(0.0032955))]
    [-7, 0]
    """
    multiplier = ops.cast(multiplier, "float32")
    shift = ops.cast(exponent(multiplier) + 1, "float64")
    two = ops.cast(2.0, "float64")
    fraction = ops.cast(multiplier, "float64") / ops.power(two, shift) * 2.0**31  # an integer below 2**31
    steps = ops.cast(steps, "float64") * ops.power(two, ops.maximum(shift, 0.0))
    product = steps * fraction  # below 2**53 for the steps above: exact
    nudge = ops.where(product >= 0, ops.full_like(product, 2.0**30), ops.full_like(product, 1.0 - 2.0**30))
    nudged = product + nudge
    high = ops.sign(nudged) * ops.floor(ops.abs(nudged) / 2.0**31)  # C's division rounds towards zero
    divisor = ops.power(two, ops.maximum(-shift, 0.0))
    floor = ops.floor(high / divisor)
    remainder = high - floor * divisor
    threshold = ops.floor((divisor - 1.0) / 2.0) + ops.cast(high < 0, "float64")
    return floor + ops.cast(remainder > threshold, "float64")


def requantized_prelu(x, alpha, x_scale, alpha_scale, output_scale):
    """``max(x, 0) + alpha * min(x, 0)`` as TFLite's int8 PRELU kernel computes it, on the output's grid.

    ``x`` lies on the grid of step ``x_scale`` and ``alpha`` (broadcast against
    it) on that of ``alpha_scale``, both counted from zero. A non-negative input
    is rescaled by ``x_scale / output_scale``, a negative one times the slope's
    integer by ``x_scale * alpha_scale / output_scale``, each with
    :func:`multiply_by_quantized_multiplier`. XNNPACK leaves this op to TFLite's
    own kernel, so this is what a LiteRT file runs. The result is not clipped
    (the output's quantizer clips).

    Example:

    >>> import numpy as np
    >>> step = np.float32(1 / 16)
    >>> [float(v) for v in requantized_prelu(np.array([-1.0, 0.5], "float32"), np.float32(0.25), step, step, step)]
    [-0.25, 0.5]
    """
    dtype = ops.convert_to_tensor(x).dtype
    x_scale, alpha_scale, output_scale = (
        ops.cast(ops.stop_gradient(s), "float32") for s in (x_scale, alpha_scale, output_scale)
    )
    x = ops.cast(x, "float32")
    alpha = ops.cast(alpha, "float32")
    x_steps = ops.round(ops.divide(x, x_scale))
    alpha_steps = ops.round(ops.divide(ops.stop_gradient(alpha), alpha_scale))
    positive = multiply_by_quantized_multiplier(x_steps, divide_exactly(x_scale, output_scale))
    negative = multiply_by_quantized_multiplier(
        ops.cast(x_steps, "float64") * ops.cast(alpha_steps, "float64"),
        divide_exactly(x_scale * alpha_scale, output_scale),
    )
    steps = ops.where(x_steps >= 0, positive, negative)
    outputs = ops.cast(steps, "float32") * output_scale
    exact = ops.maximum(x, 0.0) + alpha * ops.minimum(x, 0.0)
    return ops.cast(exact + ops.stop_gradient(outputs - exact), dtype)


def requantized_leaky_relu(x, negative_slope, x_scale, output_scale):
    """Leaky ReLU as LiteRT's XNNPACK int8 LEAKY_RELU computes it, on the output's grid.

    XNNPACK rescales each side with an 8-bit fixed-point multiplier,

        positive = round_half_even(256 * x_scale / output_scale)
        negative = round_half_even(256 * x_scale / output_scale * negative_slope)
        out = floor((q * multiplier + 128) / 256)

    (``q`` counted from zero), which lands a step off the real value on several
    outputs in a hundred. XNNPACK takes the op only while both ratios (before the
    256) lie within ``[2**-8, 2**7]`` in magnitude; otherwise TFLite's own kernel
    runs it with :func:`multiply_by_quantized_multiplier`. The result is not
    clipped (the output's quantizer clips).

    Example:

    >>> import numpy as np
    >>> step = np.float32(0.1)
    >>> [round(float(v), 2) for v in requantized_leaky_relu(np.array([-3.0, 0.3], "float32"), 0.1, step, step)]
    [-0.3, 0.3]
    """
    dtype = ops.convert_to_tensor(x).dtype
    x_scale, output_scale = (ops.cast(ops.stop_gradient(s), "float32") for s in (x_scale, output_scale))
    x = ops.cast(x, "float32")
    slope = ops.cast(negative_slope, "float32")
    x_steps = ops.round(ops.divide(x, x_scale))
    ratio = divide_exactly(x_scale, output_scale)
    negative_ratio = ratio * slope
    multiplier = ops.where(x_steps >= 0, ops.round(ratio * 256.0), ops.round(negative_ratio * 256.0))
    xnnpack = ops.floor((x_steps * multiplier + 128.0) / 256.0)  # exact: below 2**24
    # TFLite's kernel: the slope's multiplier is x_scale * slope / output_scale, its sign kept apart
    # (its rounding is symmetric), and a zero slope gives zero.
    slope_ratio = ops.abs(divide_exactly(x_scale * slope, output_scale))
    negative = multiply_by_quantized_multiplier(x_steps, ops.where(slope_ratio > 0, slope_ratio, 1.0))
    negative = negative * ops.cast(ops.sign(slope), "float64")
    builtin = ops.where(x_steps >= 0, multiply_by_quantized_multiplier(x_steps, ratio), negative)
    magnitudes = (ratio, ops.abs(negative_ratio))
    in_range = ops.all(ops.stack([(m >= 2.0**-8) & (m <= 2.0**7) for m in magnitudes]))
    steps = ops.where(in_range, xnnpack, ops.cast(builtin, "float32"))
    outputs = steps * output_scale
    exact = ops.where(x >= 0, x, x * slope)
    return ops.cast(exact + ops.stop_gradient(outputs - exact), dtype)
