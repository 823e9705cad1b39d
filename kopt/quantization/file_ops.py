"""The int8 file's ops, computed on the grids around a QuantizeWrapper.

:mod:`kopt.quantization.integer_grid` holds the arithmetic of LiteRT's int8
kernels as plain functions of tensors and grid steps. This module connects them
to a wrapper: it reads the grids :mod:`kopt.quantization.grid_links` found
around the wrapper (its inputs' producers, its output's range, a concatenation
reading it) and turns their range variables into the steps the file stores.
Each function returns ``None`` (or leaves values alone) where a grid is unknown
or the exported graph is being traced: the converter then does the rounding.
"""

import keras

from kopt.quantization import activations as activations_lib
from kopt.quantization import bias as bias_lib
from kopt.quantization import fake_quant as fake_quant_lib
from kopt.quantization import fixed_point
from kopt.quantization import grid_links
from kopt.quantization import integer_grid

__all__ = [
    "activation_input_source", "average_pool_rounding", "file_scales", "integer_op", "kernel_scales", "requantize_onto",
]  # fmt: skip

_BINARY = {keras.layers.Add: integer_grid.requantized_add, keras.layers.Multiply: integer_grid.requantized_multiply}


def file_scales(*grids):
    """The file's steps of ``(quantizer, ranges)`` grids, or ``None`` if any is unknown (or traced for export)."""
    if fake_quant_lib.lowering_active():
        return None
    scales = [bias_lib.activation_scale(*grid) if grid is not None else None for grid in grids]
    return None if any(scale is None for scale in scales) else tuple(scales)


def integer_op(wrapper, inputs):
    """A no-argument function computing ``wrapper``'s layer on ``inputs`` as its int8 file op does, or ``None``.

    An Add or a Multiply (XNNPACK's integer ADD and MUL, on the two input grids
    and the output grid), a channels-last GlobalAveragePooling2D (its MEAN), a
    LeakyReLU (XNNPACK's LEAKY_RELU) and a PReLU (TFLite's PRELU, with its slope
    on the grid the converter gives it). The output quantizers still run after it.
    """
    layer = wrapper.layer
    if type(layer) in (keras.layers.LeakyReLU, keras.layers.PReLU):
        return _rectifier_op(wrapper, inputs)
    function = _BINARY.get(type(layer))
    if function is not None:
        two_inputs = isinstance(inputs, (list, tuple)) and len(inputs) == 2
        if not wrapper._input_sources or not two_inputs or len(wrapper._input_sources) != 2:
            return None
        grids = [grid_links.quantizer_range(source()) for source in wrapper._input_sources] + [wrapper._output_grid()]
        scales = file_scales(*grids)
        return None if scales is None else (lambda: function(inputs[0], inputs[1], *scales))
    if type(layer) is keras.layers.GlobalAveragePooling2D and layer.data_format == "channels_last":
        output = wrapper.output_range()
        scales = file_scales(wrapper._source_range(), output)
        grid = bias_lib.activation_grid(*output) if scales is not None else None
        if grid is None or getattr(output[0], "num_bits", None) != 8:
            return None
        return lambda: integer_grid.requantized_mean(inputs, (1, 2), scales[0], *grid, keepdims=layer.keepdims)
    return None


def _rectifier_op(wrapper, inputs):
    """The file op of a LeakyReLU or PReLU wrapper, or ``None`` where a grid is unknown."""
    layer = wrapper.layer
    output = wrapper.output_range()
    scales = file_scales(wrapper._source_range(), output)
    if scales is None or getattr(output[0], "num_bits", None) != 8:
        return None
    if isinstance(layer, keras.layers.LeakyReLU):
        return lambda: fixed_point.requantized_leaky_relu(inputs, layer.negative_slope, *scales)
    pairs = wrapper.quantize_config.get_weights_and_quantizers(layer)
    if len(pairs) != 1 or pairs[0][0] is not layer.alpha:
        return None  # a QuantizeConfig of the user's own
    quantizer, ranges = pairs[0][1], wrapper._weight_ranges[0]
    alpha_scale = bias_lib.weight_scale(layer.alpha.value, quantizer, ranges)
    if alpha_scale is None:
        return None
    alpha = quantizer(layer.alpha.value, False, ranges)
    return lambda: fixed_point.requantized_prelu(inputs, alpha, scales[0], alpha_scale, scales[1])


def kernel_scales(activation, quantizer, input_ranges, output_ranges):
    """``(input_step, output_step)`` for an activation with a file kernel of its own (swish, hard swish), or ``None``."""
    eight_bit = getattr(quantizer, "num_bits", None) == 8
    if activations_lib.file_kernel(activation) is None or not eight_bit or input_ranges is None:
        return None
    return file_scales((quantizer, input_ranges), (quantizer, output_ranges))


def activation_input_source(wrapper, activations, activation_ranges):
    """The range variables whose grid an Activation layer's input already lies on, or ``None``.

    The file reads an Activation's input on its producer's grid: a second
    range of its own, tracked apart, would round the tensor twice.
    """
    if (
        not isinstance(wrapper.layer, keras.layers.Activation)
        or len(activations) != 1
        or activation_ranges[0][0] is None
    ):
        return None
    source = wrapper._source_range()
    if source is None or source[0].get_config() != activations[0][1].get_config():
        return None
    return source[1]


def requantize_onto(outputs, source, target):
    """``outputs``, on the grid of ``source`` (``(quantizer, ranges)``), moved onto ``target``'s as XNNPACK does.

    Where the source grid is unknown, only ``target``'s quantizer rounds.
    """
    scales = file_scales(source, target)
    if scales is not None:
        outputs = integer_grid.requantize(outputs, *scales)
    quantizer, ranges = target
    return quantizer(outputs, False, ranges)


def average_pool_rounding(outputs, quantizer, ranges):
    """Average pooling's output rounded like TFLite's int8 kernel, on its input's grid (when that is known)."""
    grid = bias_lib.activation_grid(quantizer, ranges)
    if grid is None or quantizer.num_bits != 8:
        return outputs
    return integer_grid.average_pool_rounding(outputs, *grid)
