"""Recurrent layers in TFLite conversion: the static batch and the unrolling they need.

TFLite lowers a Keras RNN's loop (LSTM, GRU, SimpleRNN, also inside Bidirectional)
only with a static batch, and TensorFlow's calibrator crashes the process (a
segmentation fault, TF 2.21) on that ``WHILE`` loop in the integer modes, so
``convert`` fixes the batch for such models and converts them unrolled there.
"""

import warnings

import keras

from tflite_export.cloning import clone_graph_model
from tflite_export.layers import all_layers

_SUBCLASSED_ADVICE = (
    "Build it with the functional API or Sequential, or give its recurrent layers unroll=True and a "
    "fixed batch yourself."
)

__all__ = ["automatic_batch_size", "looped_layers", "rebuilt", "unrolled"]


def looped_layers(model):
    """Names of ``model``'s recurrent layers that convert to a ``WHILE`` loop (those not unrolled).

    A quantization-aware model keeps that loop in float by design, with its kernels on
    int8 grids; the converter's calibration (``representative_dataset``) would put the
    loop's tensors on grids of their own, which break the grids QAT learned around it.

    Example:

    >>> inputs = keras.Input((5, 3))
    >>> model = keras.Model(inputs, keras.layers.LSTM(4, name="rnn")(inputs))
    >>> looped_layers(model)
    ['rnn']
    """
    return [layer.name for layer in _looped(model)]


def _looped(model):
    return [layer for layer in all_layers(model) if _is_recurrent(layer) and not _is_unrolled(layer)]


def automatic_batch_size(model):
    recurrent = [layer.name for layer in all_layers(model) if _is_recurrent(layer)]
    if not recurrent or not getattr(model, "inputs", None):
        return None
    warnings.warn(
        f"Model {model.name!r} has recurrent layers ({', '.join(recurrent[:5])}); TFLite lowers their loop only "
        "with a static batch, so the file is converted with batch_size=1 (predict and verify run it one "
        "example at a time). Pass batch_size=N for another fixed batch.",
        stacklevel=3,
    )
    return 1


def unrolled(model):
    """A copy of ``model`` whose recurrent layers are unrolled, for integer calibration.

    TensorFlow's calibrator crashes the process (a segmentation fault, TF 2.21)
    on the ``WHILE`` loop a recurrent layer becomes, so the integer modes convert
    the loop unrolled: one set of ops per time step, which needs a known number of
    steps.
    """
    recurrent = _looped(model)
    if not recurrent:
        return model
    unknown = [layer.name for layer in recurrent if layer.input.shape[1] is None]
    if unknown:
        raise ValueError(
            f"Integer conversion unrolls recurrent layers, which needs a fixed number of time steps; layer(s) "
            f"{', '.join(unknown)} of model {model.name!r} take sequences of any length. Build the model on "
            "keras.Input((steps, features)), or use mode='dynamic' (int8 weights, float activations)."
        )
    if any(isinstance(layer, keras.Model) for layer in model.layers):
        raise ValueError(
            f"Integer conversion unrolls recurrent layers; in model {model.name!r} they sit in a nested model, "
            "which kopt does not rewrite. Set unroll=True on them, or use mode='dynamic'."
        )

    def unroll(layer):
        if not (_is_recurrent(layer) and not _is_unrolled(layer)):
            return None
        config = outer = layer.get_config()
        inner = layer
        while inner is not _unwrapped(layer):  # a kopt wrapper's config holds the layer's
            config, inner = config["layer"]["config"], inner.layer
        if isinstance(inner, keras.layers.Bidirectional):
            for key in ("layer", "backward_layer"):
                if config.get(key):
                    config[key]["config"]["unroll"] = True
        else:
            config["unroll"] = True
        return layer.__class__.from_config(outer)

    return rebuilt(model, unroll)


def rebuilt(model, replacement):
    """A copy of ``model`` for conversion: each layer is ``replacement(layer)`` or, if that is ``None``,
    rebuilt from its config; then every weight is copied over, in order.

    Rebuilding every layer leaves the user's model without new graph nodes, and a
    replacement must hold the same weights, in the same order, as the layer it
    stands in for. The copy is made by :func:`tflite_export.cloning.clone_graph_model`,
    so input names stay and nested models are entered.
    """

    def clone(layer):
        stand_in = replacement(layer)
        return stand_in if stand_in is not None else layer.__class__.from_config(layer.get_config())

    copy = clone_graph_model(model, clone, action="rebuild for conversion", advice=_SUBCLASSED_ADVICE)
    copy.set_weights(model.get_weights())
    return copy


def _is_unrolled(layer):
    layer = _unwrapped(layer)
    inner = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
    return bool(getattr(inner, "unroll", False))


def _is_recurrent(layer):
    return isinstance(_unwrapped(layer), (keras.layers.Bidirectional, keras.layers.RNN))


def _unwrapped(layer):
    # kopt's wrappers (a QuantizeWrapper around an LSTM) hold the layer as `.layer`;
    # Bidirectional does too, but is recurrent itself.
    while isinstance(layer, keras.layers.Wrapper) and not isinstance(layer, keras.layers.Bidirectional):
        layer = layer.layer
    return layer
