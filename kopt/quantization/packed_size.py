"""packed_size: the bytes a quantization-aware model's weights take packed at their own bit width.

An int8 TFLite file stores binary and ternary kernels as int8, 8 bits a weight,
so that every int8 runtime runs them; a runtime with 1- and 2-bit kernels would
store them packed. This is the size they would then take, counted from what the
model's quantizers declare:

* a binary kernel: 1 bit a weight; a ternary one: 2 bits a weight (three values
  need two bits; ``log2(3)`` is not a whole packing unit);
* any other quantized weight: its quantizer's ``num_bits`` (8, or 4 for the
  4-bit scheme);
* one float32 scale per output channel of a quantized weight (per tensor where
  its grid is per tensor, except binary and ternary Dense kernels, which keep a
  scale per unit);
* every weight that is not quantized (biases, which an int8 file stores as
  int32, weights of float layers): 32 bits.

Quantization ranges, sparsity masks and other bookkeeping of the wrappers are
not weights of the deployed model and are not counted; nor is sparsity (a
pruned zero takes as many bits as any weight). ``float32_bytes`` counts the same
weights at 32 bits each, the size they take in a float32 file.

Example:

>>> import keras
>>> from kopt.quantization import quantize_model
>>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64), keras.layers.Dense(64),
...                           keras.layers.Dense(10)])
>>> size = packed_size(quantize_model(model, scheme="binary"))
>>> size["float32_bytes"], size["packed_bytes"]
(35880, 6064)
>>> [(entry["bits"], entry["scales"]) for entry in size["tensors"] if entry["weights"] > 100]
[(8, 1), (1, 64), (8, 1)]
"""

import math
from typing import Any

import keras
import numpy as np

from kopt.quantization.quantize_layer import QuantizeLayer
from kopt.quantization.registry import DepthwiseKernelQuantizer
from kopt.quantization.wrapper import QuantizeWrapper

__all__ = ["packed_size"]

_FLOAT_BITS = 32
_SCALE_BITS = 32


def packed_size(model: keras.Model) -> dict[str, Any]:
    """Bytes of ``model``'s weights packed at their quantizers' bit widths (see the module docstring).

    Args:
        model: A Keras model; quantization-aware (``quantize_model``) to count
            anything below 32 bits.

    Returns:
        ``{"packed_bytes", "float32_bytes", "tensors"}``: the totals, and per
        weight ``{"layer", "weight", "weights", "bits", "scales", "packed_bytes"}``
        (each tensor rounded up to whole bytes).

    Raises:
        ValueError: If ``model`` is not a ``keras.Model``.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"packed_size expects a keras.Model. Received: model={model!r}")
    tensors = []
    for layer in _layers(model):
        if isinstance(layer, QuantizeLayer):
            continue  # the input's range: no weight of the deployed model
        quantizers = {}
        inner = layer
        if isinstance(layer, QuantizeWrapper):
            inner = layer.layer
            quantizers = {id(v): q for v, q in layer.quantize_config.get_weights_and_quantizers(inner)}
        for variable in inner.weights:
            count = int(np.prod(variable.shape))
            quantizer = quantizers.get(id(variable))
            bits, scales = _bits_and_scales(quantizer, tuple(variable.shape))
            packed = math.ceil((count * bits + scales * _SCALE_BITS) / 8)
            tensors.append(
                {
                    "layer": inner.name,
                    "weight": variable.path,
                    "weights": count,
                    "bits": bits,
                    "scales": scales,
                    "packed_bytes": packed,
                }
            )
    return {
        "packed_bytes": sum(entry["packed_bytes"] for entry in tensors),
        "float32_bytes": sum(entry["weights"] for entry in tensors) * _FLOAT_BITS // 8,
        "tensors": tensors,
    }


def _bits_and_scales(quantizer, shape):
    if quantizer is None:
        return _FLOAT_BITS, 0
    packed_bits = getattr(quantizer, "packed_bits", None)
    if packed_bits is not None:
        # Binary and ternary: a scale per channel of their codes, whatever the int8 grid.
        axes = quantizer.channel_axes
        return packed_bits, int(np.prod(shape[len(shape) - axes :])) if axes else 1
    bits = getattr(quantizer, "num_bits", _FLOAT_BITS)
    if not getattr(quantizer, "per_axis", False):
        return bits, 1
    # A per-axis grid has one scale per slice of the last axis; a depthwise kernel's
    # channels are its last two axes together.
    channels = shape[-2] * shape[-1] if isinstance(quantizer, DepthwiseKernelQuantizer) else shape[-1]
    return bits, int(channels)


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer
