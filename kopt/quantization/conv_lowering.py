"""Quantization-aware convolutions as the TFLite converter can take them into int8.

Two convolutions reached the converter in a form it could not make integer, so
in the graph traced for conversion (and only there) the wrapped layer computes
what its own op computes, written out differently. The numbers are the layer's.

* **Conv1D and DepthwiseConv1D.** Keras runs each as a 2-D convolution whose
  ``(k, in, out)`` kernel is expanded to ``(1, k, in, out)`` inside the op. Quantized per output channel
  before that expansion, the kernel reached the converter as a per-axis
  quantized tensor followed by a RESHAPE, which it cannot carry the channel axis
  through (``'tfl.reshape' op requires 'output' type ...``): every
  quantization-aware Conv1D failed its int8 export. Expanding first and
  squeezing the quantized kernel back left a RESHAPE/TRANSPOSE pair it fails on
  the same way. So the input gains a height of 1, the kernel is expanded and
  then quantized, exactly as a ``Conv2D``'s is, and the height is squeezed off.
* **Dilated convolutions** (Conv1D, Conv2D, DepthwiseConv1D/2D with a dilation rate
  above 1). TensorFlow writes one as SpaceToBatch, an undilated convolution and
  BatchToSpace, and applies the bias and activation after the BatchToSpace. The
  layer's output range then sits behind the BatchToSpace and the activation,
  where the converter does not carry it back to the convolution, which stayed in
  float between a DEQUANTIZE and a QUANTIZE. So the rearrangement is written
  out (``tf.nn.with_space_to_batch``, the op TensorFlow itself uses) with the
  bias, the activation and the layer's output quantization inside it, before
  the BatchToSpace; BatchToSpace only moves values, so quantizing before it or
  after it gives the same numbers, and every op of the file is integer.
"""

import contextlib

import keras
import tensorflow as tf
from keras import ops

from kopt.quantization.fake_quant import lowering_active

__all__ = ["lowered"]

_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_ONE_D = (keras.layers.Conv1D, keras.layers.DepthwiseConv1D)
_DILATABLE = (keras.layers.Conv1D, keras.layers.Conv2D) + _DEPTHWISE


@contextlib.contextmanager
def lowered(layer, weights_and_quantizers, weight_ranges, training, *, quantized_activation=False, output_grid=None):
    """While lowering, runs a 1-D or a dilated convolution as the converter needs it; otherwise does nothing.

    Args:
        layer: The wrapped layer.
        weights_and_quantizers: ``[(variable, quantizer), ...]`` of its quantize config.
        weight_ranges: The range variables of each, in that order.
        training: The wrapper's ``training`` flag, passed to the kernel's quantizer.
        quantized_activation: Whether the layer's activation, as installed for
            this call, quantizes its output (then it does so before the BatchToSpace).
        output_grid: Otherwise, a function returning ``(quantizer, range variables)``
            of the grid the file puts the convolution's output on (its own output
            range, or that of the ReLU fused after it) or ``None``, applied before the
            BatchToSpace; called only for a dilated convolution. One whose output has
            neither is left as TensorFlow writes it.

    Example:

    >>> import numpy as np
    >>> layer = keras.layers.Conv1D(2, 3)
    >>> with lowered(layer, [], [], False):  # not lowering: the layer is left as it is
    ...     tuple(layer(np.ones((1, 5, 4), "float32")).shape)
    (1, 3, 2)
    """
    call = _lowered_call(layer, weights_and_quantizers, weight_ranges, training, quantized_activation, output_grid)
    if call is None:
        yield
        return
    layer.call = call  # an instance attribute: Keras' __call__ runs it in place of the layer's own call
    try:
        yield
    finally:
        del layer.call


def _lowered_call(layer, weights_and_quantizers, weight_ranges, training, quantized_activation, output_grid):
    """The replacement ``call`` for ``layer`` while lowering, or ``None`` to leave the layer as it is."""
    if not lowering_active() or not isinstance(layer, _DILATABLE) or layer.data_format != "channels_last":
        return None
    kernel_quantizer = next(
        (
            (quantizer, ranges)
            for (variable, quantizer), ranges in zip(weights_and_quantizers, weight_ranges)
            if variable is layer.kernel
        ),
        None,
    )
    dilated = any(rate > 1 for rate in layer.dilation_rate)
    output_quantizer = None if quantized_activation or output_grid is None or not dilated else output_grid()
    # With no range to put before the BatchToSpace, dilation is left as TensorFlow writes it (a float conv).
    dilated = dilated and (quantized_activation or output_quantizer is not None)
    one_d = isinstance(layer, _ONE_D)
    if one_d and kernel_quantizer is None:
        return None
    if not one_d and not dilated:
        return None
    # Read before the wrapper substitutes the quantized 3-D kernel.
    float_kernel = layer.kernel.value if one_d else None

    def call(inputs):
        kernel = layer.kernel.value  # inside the wrapper's scope: the quantized kernel
        padding = layer.padding
        strides, dilation = tuple(layer.strides), tuple(layer.dilation_rate)
        if one_d:
            if padding == "causal":
                inputs = ops.pad(inputs, [[0, 0], [dilation[0] * (layer.kernel_size[0] - 1), 0], [0, 0]])
                padding = "valid"
            quantizer, ranges = kernel_quantizer
            kernel = quantizer(ops.expand_dims(float_kernel, 0), training, ranges)
            inputs = ops.expand_dims(inputs, 1)
            strides, dilation = (1, strides[0]), (1, dilation[0])

        def finish(outputs):
            if layer.use_bias:
                outputs = outputs + layer.bias
            if layer.activation is not None:
                outputs = layer.activation(outputs)
            return outputs

        if dilated:

            def undilated(converted, num_spatial_dims, op_padding):
                del num_spatial_dims
                outputs = finish(_convolve(layer, converted, kernel, (1, 1), op_padding.lower(), (1, 1)))
                if output_quantizer is not None:
                    quantizer, ranges = output_quantizer
                    outputs = quantizer(outputs, False, ranges)
                return outputs

            outputs = tf.nn.with_space_to_batch(
                inputs, dilation, padding.upper(), undilated, filter_shape=tuple(kernel.shape[:2])
            )
        else:
            outputs = finish(_convolve(layer, inputs, kernel, strides, padding, dilation))
        return ops.squeeze(outputs, 1) if one_d else outputs

    return call


def _convolve(layer, inputs, kernel, strides, padding, dilation):
    if isinstance(layer, _DEPTHWISE):
        return ops.depthwise_conv(
            inputs, kernel, strides=strides, padding=padding, dilation_rate=dilation, data_format="channels_last"
        )
    return ops.conv(
        inputs, kernel, strides=strides, padding=padding, dilation_rate=dilation, data_format="channels_last"
    )
