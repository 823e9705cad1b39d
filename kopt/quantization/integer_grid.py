"""Convolutions and matmuls computed on the integer grid, as the int8 file computes them.

An int8 TFLite convolution (or fully connected layer) multiplies integers and
sums them exactly in int32, then scales the sum once:

    out = round((sum_k (q_x - zp_x) * q_w + q_bias) * input_scale * weight_scale / output_scale)

A QAT model that runs the same layer on the fake-quantized float tensors sums
products like ``input_scale * weight_scale * (q_x - zp_x) * q_w`` in float32, in
the order the backend's kernel picks. The rounding error is tiny, but a few in
ten thousand outputs land on the other side of a rounding boundary, one step
off the file's; through fifty residual blocks (ResNet50) those steps grow until
the file and the QAT model disagree on predictions.

Dividing the quantized input and kernel by their scales gives integers again,
whose products and sums float32 holds exactly (while every partial sum stays
under 2**24, which int8 data reaches only in pathological layers), so the
layer's own kernel then computes the file's int32 accumulator, and one multiply
by ``input_scale * weight_scale`` per channel afterwards scales it like the file.
:class:`kopt.quantization.QuantizeWrapper` does this in inference; rounding uses
the straight-through estimator all the same, so gradients through these
functions are those of the float layer.

Example:

>>> import numpy as np
>>> x = np.array([[0.3, -0.1]], "float32")
>>> [float(v) for v in to_grid(x, np.float32(0.1))[0]]
[3.0, -1.0]
"""

import keras
from keras import ops

from kopt.quantization import fixed_point
from kopt.quantization.fake_quant import divide_exactly

__all__ = [
    "RescaledActivation", "accumulates_exactly", "average_pool_rounding", "kernel_to_grid", "layer_to_grid",
    "leading_shape", "requantized_add", "requantize", "requantized_mean", "requantized_multiply", "requantized_swish", "to_grid",
]  # fmt: skip

_LAYERS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)
_EXACT_DTYPES = ("float32", "float64")


def to_grid(values, scale):
    """``values / scale`` rounded to integers, gradient straight through."""
    values = ops.convert_to_tensor(values)
    scaled = values / ops.stop_gradient(ops.cast(scale, values.dtype))
    return scaled + ops.stop_gradient(ops.round(scaled) - scaled)


def kernel_to_grid(layer, kernel, weight_scale):
    """The quantized ``kernel`` of ``layer`` as integers, ``weight_scale`` per output channel."""
    scale = ops.convert_to_tensor(weight_scale)
    if isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)) and len(scale.shape) == 1:
        # (h, w, in, multiplier), or (k, in, multiplier): output channel c * multiplier + m has scale[c * multiplier + m].
        scale = ops.reshape(scale, tuple(kernel.shape[-2:]))
    return to_grid(kernel, scale)


def layer_to_grid(layer, inputs, quantized, input_scale, weight_scale):
    """Puts ``layer``'s kernel and bias in ``quantized`` (``id(variable)`` -> value) on their integer grids.

    Returns ``inputs`` on theirs.
    """
    kernel = layer.kernel
    quantized[id(kernel)] = kernel_to_grid(layer, quantized[id(kernel)], weight_scale)
    bias = getattr(layer, "bias", None)
    if bias is not None:
        quantized[id(bias)] = to_grid(quantized[id(bias)], input_scale * weight_scale)
    return to_grid(inputs, input_scale)


def leading_shape(layer, inputs):
    """The axes before the features of a Dense layer's N-D input (N > 2), or ``None``."""
    if not isinstance(layer, keras.layers.Dense) or not hasattr(inputs, "shape") or len(inputs.shape) <= 2:
        return None
    if all(size is not None for size in inputs.shape[1:-1]):
        return (-1,) + tuple(inputs.shape[1:-1])
    return tuple(ops.shape(inputs)[:-1])


def accumulates_exactly(layer, compute_dtype):
    """Whether ``layer`` can run on the integer grid inside a QAT wrapper.

    True for channels-last convolutions (not transposed), depthwise convolutions
    and Dense layers computing in float32 or float64: half precision cannot hold
    an int32 accumulator.
    """
    if compute_dtype not in _EXACT_DTYPES:
        return False
    if isinstance(layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)):
        return False
    if isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)) or isinstance(layer, _LAYERS):
        return getattr(layer, "data_format", "channels_last") == "channels_last"
    return False


class RescaledActivation:
    """An activation applied after scaling the integer accumulator back to real values.

    Installed as the layer's activation while it runs on the integer grid: the
    layer's kernel computes the accumulator, this scales it by
    ``input_scale * weight_scale`` (per output channel) and then applies the
    layer's own activation (the quantization-aware one, when there is one).

    Given ``output_scale`` (in inference, when the grid of the layer's output is
    known), it also rounds the way LiteRT's XNNPACK kernels requantize:
    ``round_half_even(float32(accumulator) * multiplier)`` steps of
    ``output_scale``, with ``multiplier = input_scale * weight_scale /
    output_scale`` evaluated in float32 in that order. The output quantizer then
    finds the values already on its grid, and the layer gives the file's
    integers bit for bit (a float64 requantization would differ from the file
    on about one output in 500,000, which a deep network amplifies).

    Args:
        activation: The layer's activation function.
        scale: ``input_scale * weight_scale``, a scalar or one per output channel.
        output_scale: The step of the output's grid, or ``None`` to leave the
            rounding to the output quantizer.

    Example:

    >>> import numpy as np
    >>> rescaled = RescaledActivation(keras.activations.relu, np.float32(0.5))
    >>> [float(v) for v in rescaled(np.array([-4.0, 4.0], "float32"))]
    [0.0, 2.0]
    >>> on_grid = RescaledActivation(keras.activations.relu, np.float32(0.5), output_scale=np.float32(0.75))
    >>> [float(v) for v in on_grid(np.array([-4.0, 4.0], "float32"))]
    [0.0, 2.25]
    """

    def __init__(self, activation, scale, output_scale=None):
        self.activation = activation
        self.scale = scale
        self.output_scale = output_scale
        self.__name__ = getattr(activation, "__name__", type(activation).__name__)

    def __call__(self, accumulator):
        accumulator = ops.convert_to_tensor(accumulator)
        scale = ops.stop_gradient(ops.cast(self.scale, accumulator.dtype))
        real = accumulator * scale
        if self.output_scale is not None:
            output_scale = ops.stop_gradient(ops.cast(self.output_scale, "float32"))
            multiplier = divide_exactly(ops.cast(scale, "float32"), output_scale)
            steps = ops.round(ops.cast(accumulator, "float32") * multiplier)
            requantized = ops.cast(steps * output_scale, accumulator.dtype)
            real = real + ops.stop_gradient(requantized - real)
        return self.activation(real) if self.activation is not None else real


def requantized_add(a, b, a_scale, b_scale, output_scale):
    """``a + b`` as LiteRT's XNNPACK int8 ADD computes it, on the output's grid.

    The kernel does not add real values: it scales each input's integers by a
    fixed-point multiplier of about 21 bits and shifts the sum back,

        shift = 20 - exponent(max(a_scale, b_scale) / output_scale)
        m_a = round(a_scale / output_scale * 2**shift)      (likewise m_b)
        out = floor((q_a * m_a + q_b * m_b + 2**(shift - 1)) / 2**shift)

    (``q`` counted from each zero point), so it rounds the exact sum half up,
    after the multipliers' own rounding; an exact float sum differs from it on
    about one element in ten thousand, enough to change predictions after a
    ResNet's sixteen residual adds. ``a`` and ``b`` must lie on their grids;
    the result lies on the output's (the quantizer after it clips it).

    Example:

    >>> import numpy as np
    >>> one = np.float32(1.0)
    >>> [float(v) for v in requantized_add(np.array([1.0, 2.0], "float32"), np.array([0.5, -3.0], "float32"),
    ...                                    np.float32(0.5), np.float32(0.5), one)]
    [2.0, -1.0]
    """
    a_scale, b_scale, output_scale = (
        ops.cast(ops.stop_gradient(s), "float32") for s in (a_scale, b_scale, output_scale)
    )
    a_ratio = divide_exactly(a_scale, output_scale)
    b_ratio = divide_exactly(b_scale, output_scale)
    shift = 20 - fixed_point.exponent(ops.maximum(a_ratio, b_ratio))
    power = ops.power(2.0, ops.cast(shift, "float32"))  # exact: a power of two
    a_multiplier = ops.cast(ops.round(a_ratio * power), "int32")
    b_multiplier = ops.cast(ops.round(b_ratio * power), "int32")
    a_steps = ops.cast(ops.round(ops.divide(ops.cast(a, "float32"), a_scale)), "int32")
    b_steps = ops.cast(ops.round(ops.divide(ops.cast(b, "float32"), b_scale)), "int32")
    rounding = ops.left_shift(ops.ones_like(shift), shift - 1)
    total = a_steps * a_multiplier + b_steps * b_multiplier + rounding  # < 2**30: exact in int32
    steps = ops.right_shift(total, shift)  # arithmetic: floor
    outputs = ops.cast(steps, "float32") * output_scale
    exact = ops.cast(a, "float32") + ops.cast(b, "float32")
    return ops.cast(exact + ops.stop_gradient(outputs - exact), ops.convert_to_tensor(a).dtype)


def requantize(values, input_scale, output_scale):
    """``values`` moved from one int8 grid to another, as LiteRT's XNNPACK QUANTIZE does it.

    The converter inserts such a requantization wherever a tensor must change
    scale without an op of its own (an input of a concatenation on another
    grid). XNNPACK's kernel multiplies by the scale ratio in 8-bit fixed point,

        multiplier = round_half_even(256 * input_scale / output_scale)
        out = floor((q * multiplier + 128) / 256)

    (``q`` counted from the zero point), so it can land a step away from the
    exactly rounded real value: on a few elements in a hundred where the ratio
    is far from a multiple of 1/256. ``values`` must lie on the input grid;
    the result lies on the output's (the output quantizer after it clips it).

    Example:

    >>> import numpy as np
    >>> # 64 steps of 0.6 are 38.4, which rounds to 38; the multiplier 154/256 makes it 39.
    >>> [float(v) for v in requantize(np.array([1.2, 38.4], "float32"), np.float32(0.6), np.float32(1.0))]
    [1.0, 39.0]
    """
    dtype = ops.convert_to_tensor(values).dtype
    input_scale, output_scale = (ops.cast(ops.stop_gradient(s), "float32") for s in (input_scale, output_scale))
    values = ops.cast(values, "float32")
    multiplier = ops.round(divide_exactly(input_scale, output_scale) * 256.0)
    steps = ops.floor((ops.round(ops.divide(values, input_scale)) * multiplier + 128.0) / 256.0)  # exact: < 2**24
    outputs = steps * output_scale
    return ops.cast(values + ops.stop_gradient(outputs - values), dtype)


def requantized_multiply(a, b, a_scale, b_scale, output_scale):
    """``a * b`` as LiteRT's XNNPACK int8 MUL computes it, on the output's grid.

    The kernel multiplies the two inputs' integers (counted from their zero
    points) exactly and requantizes the product in float32,

        out = round_half_even(float32(q_a * q_b) * multiplier)
        multiplier = float32(float32(a_scale * b_scale) / output_scale)

    Rounding the real product mostly gives the same integers; computing from
    the integers makes the rare ties and float32 roundings fall the file's way
    (EfficientNet's squeeze-and-excite gates and every swish end in such a
    MUL). ``a`` and ``b`` must lie on their grids (broadcasting as
    ``keras.ops.multiply`` does); the result lies on the output's.

    Example:

    >>> import numpy as np
    >>> half = np.float32(0.5)
    >>> [float(v) for v in requantized_multiply(np.array([1.5, -1.0], "float32"), np.array([0.5, 2.5], "float32"),
    ...                                         half, half, half)]
    [1.0, -2.5]
    """
    dtype = ops.convert_to_tensor(a).dtype
    a_scale, b_scale, output_scale = (
        ops.cast(ops.stop_gradient(s), "float32") for s in (a_scale, b_scale, output_scale)
    )
    a, b = ops.cast(a, "float32"), ops.cast(b, "float32")
    multiplier = divide_exactly(a_scale * b_scale, output_scale)
    product = ops.round(ops.divide(a, a_scale)) * ops.round(ops.divide(b, b_scale))  # < 2**16: exact
    outputs = ops.round(product * multiplier) * output_scale
    exact = a * b
    return ops.cast(exact + ops.stop_gradient(outputs - exact), dtype)


def requantized_swish(x, x_scale, output_scale):
    """``x * sigmoid(x)`` (swish, SiLU) as the int8 file computes it.

    The converter splits swish into an int8 LOGISTIC, whose output lies on the
    fixed grid ``1/256`` (zero point -128; XNNPACK looks it up in a table of
    ``sigmoid`` rounded half to even), and an int8 MUL of ``x`` with it
    (:func:`requantized_multiply`). Rounding only the real swish, as a plain
    fake-quantized activation does, misses the rounding of the sigmoid: about
    one output in twenty lands a step off the file's.

    Example:

    >>> import numpy as np
    >>> step = np.float32(1 / 32)
    >>> [float(v) for v in requantized_swish(np.array([-1.0, 0.0, 2.0], "float32"), step, step)]
    [-0.28125, 0.0, 1.75]
    """
    dtype = ops.convert_to_tensor(x).dtype
    x_scale, output_scale = (ops.cast(ops.stop_gradient(s), "float32") for s in (x_scale, output_scale))
    x = ops.cast(x, "float32")
    x_steps = ops.round(ops.divide(x, x_scale))
    sigmoid_steps = ops.clip(ops.round(ops.sigmoid(x_steps * x_scale) * 256.0), 0.0, 255.0)
    multiplier = divide_exactly(x_scale / 256.0, output_scale)  # x_scale / 256 is exact: a power of two
    outputs = ops.round(x_steps * sigmoid_steps * multiplier) * output_scale
    exact = x * ops.sigmoid(x)
    return ops.cast(exact + ops.stop_gradient(outputs - exact), dtype)


def requantized_mean(x, axis, x_scale, output_scale, output_min, *, keepdims=False, num_bits=8):
    """The mean of ``x`` (on the grid of step ``x_scale``) over ``axis``, as XNNPACK's int8 MEAN computes it.

    The kernel sums the input's integers, multiplies the sum once, in float32,
    by ``x_scale / output_scale / count``, adds the output's zero point and
    rounds half to even. The real mean rounded half up (a plain output
    quantizer) lands a step off wherever that product is a tie, which is
    frequent when the two scales stand in a simple ratio.

    Args:
        x: Values on the input grid.
        axis: The axes averaged (a tuple of ints).
        x_scale: The input grid's step.
        output_scale: The output grid's step (:func:`kopt.quantization.bias.file_scale`).
        output_min: The sanitized lower end of the output's range.
        keepdims: Whether the averaged axes stay, with size 1.
        num_bits: Bits of the output grid.

    Example:

    >>> import numpy as np
    >>> x = np.array([[0.0, 0.5], [1.0, 1.5]], "float32").reshape(1, 2, 2, 1)
    >>> # mean 0.75 = 1.5 steps of 0.5; zero point -128: raw -126.5 rounds to -126.
    >>> [float(v) for v in np.ravel(requantized_mean(x, (1, 2), 0.5, 0.5, 0.0))]
    [1.0]
    """
    x = ops.convert_to_tensor(x)
    x_scale, output_scale = (ops.cast(ops.stop_gradient(s), "float32") for s in (x_scale, output_scale))
    count = 1
    for index in axis:
        count *= int(x.shape[index])
    total = ops.sum(ops.round(ops.cast(x, "float32") / x_scale), axis=axis, keepdims=keepdims)
    multiplier = divide_exactly(divide_exactly(x_scale, output_scale), float(count))
    zero_point = _zero_point(output_scale, output_min, num_bits)
    raw = ops.round(total * multiplier + zero_point)  # half to even
    exact = ops.mean(x, axis=axis, keepdims=keepdims)
    return exact + ops.stop_gradient(ops.cast((raw - zero_point) * output_scale, exact.dtype) - exact)


def average_pool_rounding(values, scale, min_value, *, num_bits=8):
    """Average-pooled ``values`` rounded as TFLite's int8 AVERAGE_POOL_2D rounds them.

    The kernel sums the raw int8 values of a window (zero point included) and
    divides by the window's size, rounding half away from zero. The QAT model
    averages real values and its output quantizer would round half up: with an
    even window (DenseNet's 2x2 pooling, or the border of a "same" 3x3 one) half
    of the ties fall the other way. This puts ``values`` on the kernel's
    integers first; the output quantizer then finds them on its grid.

    Args:
        values: The pooled real values, averages of values on the grid.
        scale: The grid step the file stores (:func:`file_scale`).
        min_value: The sanitized lower end of the grid's range.
        num_bits: Bits of the grid.

    Example:

    >>> import numpy as np
    >>> # min -1.28 and step 0.01: zero point 0, so -0.005 (raw -0.5) rounds away from zero.
    >>> [round(float(v), 3) for v in average_pool_rounding(np.array([-0.005, 0.005], "float32"),
    ...                                                    np.float32(0.01), np.float32(-1.28))]
    [-0.01, 0.01]
    """
    values = ops.convert_to_tensor(values)
    scale = ops.stop_gradient(ops.cast(scale, "float32"))
    zero_point = _zero_point(scale, min_value, num_bits)
    raw = ops.cast(values, "float32") / scale + zero_point
    # A window mean is a multiple of 1 / window size, but the QAT grid's float32
    # step is not exactly the file's: snapping to 1/1024 puts ties back on .5
    # without moving any other mean (windows under 500 elements) across one.
    raw = ops.round(raw * 1024.0) / 1024.0
    rounded = ops.sign(raw) * ops.floor(ops.abs(raw) + 0.5)
    on_grid = ops.cast((rounded - zero_point) * scale, values.dtype)
    return values + ops.stop_gradient(on_grid - values)


def _zero_point(scale, min_value, num_bits):
    """The integer zero point of a grid of step ``scale`` whose (sanitized) lower end is ``min_value``."""
    return ops.round(float(-(2 ** (num_bits - 1))) - ops.cast(min_value, "float32") / scale)
