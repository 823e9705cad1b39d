"""strip_quantization: a plain float Keras model with the quantized weights baked in."""

import keras

from kopt.quantization.fake_quant import tflite_lowering
from kopt.quantization.wrapper import QuantizeLayer
from kopt.quantization.wrapper import QuantizeWrapper
from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_unshared
from tflite_export.export_hooks import register_export_hook

__all__ = ["strip_quantization"]


def strip_quantization(model: keras.Model) -> keras.Model:
    """Removes quantization wrappers, keeping each weight at its quantized value.

    The result computes what the quantization-aware model computes except that
    activations are no longer rounded: use it to calibrate a converter mode whose
    ranges TFLite cannot take from the model (16x8), or to run the trained weights
    in float. BatchNormalization layers folded by ``quantize_apply`` stay folded
    (an ``Identity`` layer keeps their name).

    Args:
        model: A Sequential or functional model, quantization-aware or not.

    Returns:
        A new ``keras.Model`` without kopt quantization layers, compiled like
        ``model`` if it was (as ``keras.models.clone_model`` does).

    Example:

    >>> import keras
    >>> from kopt.quantization import quantize_model
    >>> qat = quantize_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    >>> [type(layer).__name__ for layer in strip_quantization(qat).layers]
    ['InputLayer', 'Identity', 'Dense']
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"strip_quantization expects a keras.Model. Received: model={model!r}")

    def unwrap(layer):
        if isinstance(layer, QuantizeWrapper):
            return copy_unshared(layer.layer, weights=layer.quantized_weights())
        if isinstance(layer, QuantizeLayer):
            return keras.layers.Identity(name=layer.name, dtype=layer.dtype_policy.name)
        return copy_unshared(layer)

    advice = "Read each QuantizeWrapper's quantized_weights() and assign them to the wrapped layer."
    return clone_graph_model(model, unwrap, action="strip quantization from", advice=advice)


def _prepare_for_export(model, mode):
    # int8 reads the ranges the model learned, so it converts with its wrappers on;
    # int16x8 calibrates 16-bit ranges on the stripped model (its int8-grid weights
    # kept), and a float mode (which convert() refuses for a quantization-aware model;
    # python -m tflite_export asks for its float reference file) gets that model too.
    return model if mode == "int8" else strip_quantization(model)


register_export_hook((QuantizeLayer, QuantizeWrapper), prepare=_prepare_for_export, lowering=tflite_lowering)
