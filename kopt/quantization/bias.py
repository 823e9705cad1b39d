"""Biases on the integer grid TFLite keeps them on.

An int8 TFLite convolution or fully connected layer accumulates in int32 and
adds its bias as an int32 on the grid ``input_scale * weight_scale`` (one scale
per output channel with per-channel weights):

    bias_q = round(bias / (input_scale * weight_scale)) * input_scale * weight_scale

A QAT model that adds the float bias differs from the file by up to half a step
of that grid per channel; small as that is, it moves outputs across their own
rounding boundaries, and in a deep network (MobileNetV2) enough of them add up to
change a few percent of predictions. :class:`kopt.quantization.QuantizeWrapper`
therefore rounds the bias like the file does (gradient straight through), taking
``input_scale`` from the range of the quantizer that produced its input
(:func:`range_source` finds it in the graph) and ``weight_scale`` from the
kernel's own range; both are the float32 steps the converter stores
(:func:`kopt.quantization.fake_quant.file_scale`).

Example:

>>> import numpy as np
>>> bias = np.array([0.0123, -0.5], "float32")
>>> [round(float(v), 4) for v in fake_quant_bias(bias, np.array([0.01, 0.1], "float32"))]
[0.01, -0.5]
"""

import keras
from keras import ops

from kopt.quantization import registry
from kopt.quantization.fake_quant import file_scale
from kopt.quantization.fake_quant import sanitize_range
from kopt.quantization.quantize_layer import QuantizeLayer
from kopt.quantization.quantize_layer import is_quantize_wrapper
from kopt.quantization.quantizers import AllValuesQuantizer
from kopt.quantization.quantizers import FixedRangeQuantizer
from kopt.quantization.quantizers import LastValueQuantizer
from kopt.quantization.quantizers import MovingAverageQuantizer

__all__ = ["activation_grid", "activation_scale", "fake_quant_bias", "producer", "range_source", "weight_scale"]

# How far back through layers that keep their input's grid (pooling, padding,
# reshapes, folded BatchNormalization) the input's quantizer is looked for.
_MAX_PASSTHROUGH = 64


def fake_quant_bias(bias, scale):
    """``bias`` rounded to multiples of ``scale`` (per channel), gradient straight through."""
    bias = ops.convert_to_tensor(bias)
    scale = ops.stop_gradient(ops.cast(scale, bias.dtype))
    rounded = ops.round(bias / scale) * scale
    return bias + ops.stop_gradient(rounded - bias)


def weight_scale(kernel, quantizer, ranges):
    """The scale TFLite stores for a symmetric, narrow-range quantized kernel: per channel or one.

    Computed from the range ``quantizer`` puts the float ``kernel`` on, as the
    converter computes it (:func:`kopt.quantization.fake_quant.file_scale`); a
    channel of zeros has the widest scale, as the weight quantizer gives it.
    Returns ``None`` for a quantizer that is not symmetric and narrow-range (no
    TFLite weight grid).
    """
    if not isinstance(quantizer, LastValueQuantizer) or not (quantizer.symmetric and quantizer.narrow_range):
        return None
    low, high = quantizer.range_of(ops.stop_gradient(ops.convert_to_tensor(kernel)), ranges)
    low, high = sanitize_range(ops.cast(low, "float32"), ops.cast(high, "float32"))
    return file_scale(low, high, num_bits=quantizer.num_bits, narrow_range=True)


def activation_scale(quantizer, ranges):
    """The scale TFLite stores for the grid ``quantizer`` puts a tensor on, from its range variables; or ``None``."""
    grid = activation_grid(quantizer, ranges)
    return grid[0] if grid is not None else None


def activation_grid(quantizer, ranges):
    """``(scale, min)`` of the grid ``quantizer`` puts a tensor on: the file's scale and the sanitized lower end."""
    if isinstance(quantizer, FixedRangeQuantizer):
        low, high = quantizer.init_min, quantizer.init_max
    elif isinstance(quantizer, (MovingAverageQuantizer, AllValuesQuantizer)) and not quantizer.per_axis:
        low, high = ranges["min"].value, ranges["max"].value
    else:
        return None
    low, high = sanitize_range(ops.cast(low, "float32"), ops.cast(high, "float32"))
    return file_scale(low, high, num_bits=quantizer.num_bits, narrow_range=quantizer.narrow_range), low


def range_source(tensor):
    """The layer whose quantizer put ``tensor`` on its grid, or ``None`` if unknown.

    Walks back from a symbolic tensor through layers that keep their input's
    grid to a :class:`QuantizeLayer` or a :class:`QuantizeWrapper` that
    quantizes its output.
    """

    def keeps_grid(operation):
        quantizer = isinstance(operation, QuantizeLayer) or is_quantize_wrapper(operation)
        return not quantizer and isinstance(operation, keras.layers.Layer) and registry.is_passthrough(operation)

    operation = producer(tensor, through=keeps_grid, limit=_MAX_PASSTHROUGH)
    if isinstance(operation, QuantizeLayer):
        return operation
    if is_quantize_wrapper(operation) and operation.output_range() is not None:
        return operation
    if is_quantize_wrapper(operation) and registry.keeps_grid_as_op(operation.layer):
        # A max pooling or padding wrapped to take the grid of a concatenation
        # reading it, which may not be linked yet (grid_links.concat_range).
        return operation
    return None


def producer(tensor, *, through, limit):
    """The operation that computed a symbolic ``tensor``, walking back through single-input ones ``through`` accepts.

    Returns ``None`` where the walk ends elsewhere: an input, an operation
    ``through`` accepts with several inputs, or more than ``limit`` steps.
    """
    for _ in range(limit):
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return None
        operation, node_index = history[0], history[1]
        if not through(operation):
            return operation
        nodes = getattr(operation, "_inbound_nodes", None) or []
        if node_index >= len(nodes) or len(nodes[node_index].input_tensors) != 1:
            return None
        tensor = nodes[node_index].input_tensors[0]
    return None
