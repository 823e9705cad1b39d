"""A quantization-aware Conv1D as the TFLite converter can take it: a 2-D convolution on a 4-D kernel.

Keras runs ``Conv1D`` as a 2-D convolution whose ``(k, in, out)`` kernel is
expanded to ``(1, k, in, out)`` inside the op. Quantized per output channel
before that expansion, the kernel reaches the converter as a per-axis quantized
tensor followed by a RESHAPE, which it cannot carry the channel axis through
(``'tfl.reshape' op requires 'output' type ...``): every quantization-aware
``Conv1D`` failed its int8 export. Expanding first and squeezing the quantized
kernel back leaves a RESHAPE/TRANSPOSE pair it fails on the same way. So in the
graph traced for conversion (and only there) the layer computes what Keras'
own op computes, written out as a 2-D convolution: the input gains a height of
1, the kernel is expanded and then quantized, exactly as a ``Conv2D``'s is, and
the height is squeezed off the output. The numbers are those of the layer.
"""

import contextlib

import keras
from keras import ops

from kopt.quantization.fake_quant import lowering_active

__all__ = ["as_conv2d"]


@contextlib.contextmanager
def as_conv2d(layer, weights_and_quantizers, weight_ranges, training):
    """While lowering, runs a channels-last ``Conv1D`` ``layer`` as a 2-D convolution; otherwise does nothing.

    Args:
        layer: The wrapped layer.
        weights_and_quantizers: ``[(variable, quantizer), ...]`` of its quantize config.
        weight_ranges: The range variables of each, in that order.
        training: The wrapper's ``training`` flag, passed to the kernel's quantizer.

    Example:

    >>> import numpy as np
    >>> layer = keras.layers.Conv1D(2, 3)
    >>> with as_conv2d(layer, [], [], False):  # not lowering: the layer is left as it is
    ...     tuple(layer(np.ones((1, 5, 4), "float32")).shape)
    (1, 3, 2)
    """
    applies = (
        lowering_active()
        and isinstance(layer, keras.layers.Conv1D)
        and layer.data_format == "channels_last"
        and any(variable is layer.kernel for variable, _ in weights_and_quantizers)
    )
    if not applies:
        yield
        return
    quantizer, ranges = next(
        (quantizer, ranges)
        for (variable, quantizer), ranges in zip(weights_and_quantizers, weight_ranges)
        if variable is layer.kernel
    )
    float_kernel = layer.kernel.value  # read before the wrapper substitutes the quantized 3-D kernel

    def call(inputs):
        padding = layer.padding
        if padding == "causal":
            left = layer.dilation_rate[0] * (layer.kernel_size[0] - 1)
            inputs = ops.pad(inputs, [[0, 0], [left, 0], [0, 0]])
            padding = "valid"
        kernel = quantizer(ops.expand_dims(float_kernel, 0), training, ranges)
        outputs = ops.conv(
            ops.expand_dims(inputs, 1),
            kernel,
            strides=(1, layer.strides[0]),
            padding=padding,
            dilation_rate=(1, layer.dilation_rate[0]),
            data_format="channels_last",
        )
        outputs = ops.squeeze(outputs, 1)
        if layer.use_bias:
            outputs = outputs + layer.bias
        return layer.activation(outputs) if layer.activation is not None else outputs

    layer.call = call  # an instance attribute: Keras' __call__ runs it in place of Conv1D.call
    try:
        yield
    finally:
        del layer.call
