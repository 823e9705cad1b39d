"""Quantization-aware activations: where TFLite quantizes around an activation.

TFLite fuses ReLU and ReLU6 into the op before them, so only their output is
quantized. Other activations are separate int8 ops: their input is quantized too,
and sigmoid, softmax and tanh have fixed output grids in TFLite's kernels
(``scale = 1/256, zero_point = -128`` for sigmoid and softmax; ``1/128, 0`` for
tanh), which :func:`fixed_output_quantizer` reproduces so the trained model and the
file round the same way.
"""

from keras import ops

from kopt.quantization import fixed_point
from kopt.quantization import integer_grid
from kopt.quantization.quantizers import FixedRangeQuantizer

__all__ = [
    "QuantizeAwareActivation", "activation_name", "attention_softmax", "file_kernel", "fixed_output_quantizer",
    "quantizes_input",
]  # fmt: skip

FUSED_ACTIVATIONS = ("linear", "relu", "relu6")
# Activations whose input stays float in the file: only the output is quantized.
_OUTPUT_ONLY = ("attention_softmax",)
_FIXED_8BIT_RANGES = {
    "sigmoid": (0.0, 255.0 / 256.0),
    "softmax": (0.0, 255.0 / 256.0),
    "attention_softmax": (0.0, 255.0 / 256.0),
    "tanh": (-1.0, 127.0 / 128.0),
}
# Activations whose int8 file op rounds other than the real function rounded
# once, by the names Keras gives them: swish (the converter splits it into an
# int8 LOGISTIC and an int8 MUL), hard swish (TFLite's fixed-point kernel) and
# leaky ReLU (XNNPACK's 8-bit multipliers).
_FILE_KERNELS = {
    "silu": integer_grid.requantized_swish,
    "swish": integer_grid.requantized_swish,
    "hard_silu": fixed_point.requantized_hard_swish,
    "hard_swish": fixed_point.requantized_hard_swish,
    # activation="leaky_relu" is keras.activations.leaky_relu at its default slope.
    "leaky_relu": lambda x, x_scale, output_scale: fixed_point.requantized_leaky_relu(x, 0.2, x_scale, output_scale),
}


def activation_name(activation):
    """The registered name of an activation function (``"relu"``), or its ``__name__``."""
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return name


def file_kernel(activation):
    """``kernel(x, x_scale, output_scale)`` computing ``activation`` as the int8 file does, or ``None``.

    Swish and hard swish have one; other activations round like the real
    function rounded once.
    """
    return _FILE_KERNELS.get(activation_name(activation))


def quantizes_input(activation):
    """Whether TFLite runs ``activation`` as its own op, so its input needs a range."""
    return activation_name(activation) not in FUSED_ACTIVATIONS + _OUTPUT_ONLY


def attention_softmax(scores):
    """Softmax over the last axis, as the attention core computes its weights.

    The converter runs this softmax in float (its input, the scaled dot
    products, has no int8 range) but quantizes its output on softmax's fixed
    grid (scale 1/256) for the int8 BATCH_MATMUL with the values; QAT quantizes
    the output alone, on that grid.

    Example:

    >>> import numpy as np
    >>> [round(float(v), 2) for v in attention_softmax(np.zeros((2,), "float32"))]
    [0.5, 0.5]
    """
    return ops.softmax(scores, axis=-1)


def fixed_output_quantizer(activation, num_bits):
    """The fixed-range output quantizer TFLite's int8 kernel implies, or ``None``."""
    bounds = _FIXED_8BIT_RANGES.get(activation_name(activation))
    if bounds is None or num_bits != 8:
        return None
    return FixedRangeQuantizer(num_bits=8, init_min=bounds[0], init_max=bounds[1])


class QuantizeAwareActivation:
    """Wraps an activation function: quantizes its input if needed, then its output.

    Created by ``QuantizeWrapper`` for one call; the range variables live on the
    wrapper.

    Args:
        activation: The original activation function.
        quantizer: The activation quantizer.
        input_weights: Range variables of the input quantizer (``None`` when the
            activation is fused and its input is not quantized).
        output_weights: Range variables of the output quantizer.
        training: Whether ranges are being learned.
        shared_input: Whether ``input_weights`` belong to the layer that
            produced the input (its grid), which updates them itself.
        file_scales: ``(input_scale, output_scale)`` as the file stores them,
            given in inference: a swish or hard swish then rounds like the
            file's int8 ops (:func:`file_kernel`).

    Example:

    >>> import keras, numpy as np
    >>> from kopt.quantization.quantizers import MovingAverageQuantizer
    >>> layer = keras.layers.Layer()
    >>> quantizer = MovingAverageQuantizer()
    >>> relu = QuantizeAwareActivation(keras.activations.relu, quantizer, None,
    ...                                quantizer.build((), "relu", layer), True)
    >>> [round(float(v), 2) for v in relu(np.array([-1.0, 2.0], "float32"))]
    [0.0, 2.0]
    """

    def __init__(
        self, activation, quantizer, input_weights, output_weights, training, *, shared_input=False, file_scales=None
    ):
        self.activation = activation
        self.shared_input = shared_input
        self.file_scales = file_scales
        self.quantizer = quantizer
        self.input_weights = input_weights
        self.output_weights = output_weights
        self.training = training
        self.__name__ = activation_name(activation)

    def __call__(self, inputs, *args, **kwargs):
        if self.input_weights is not None:
            inputs = self.quantizer(inputs, self.training and not self.shared_input, self.input_weights)
        kernel = file_kernel(self.activation)
        if self.file_scales is not None and self.input_weights is not None and kernel is not None:
            outputs = kernel(inputs, *self.file_scales)
            return self.quantizer(outputs, self.training, self.output_weights)
        outputs = self.activation(inputs, *args, **kwargs)
        fixed = fixed_output_quantizer(self.activation, getattr(self.quantizer, "num_bits", None))
        if fixed is not None:
            return fixed(outputs, self.training, {})
        return self.quantizer(outputs, self.training, self.output_weights)
