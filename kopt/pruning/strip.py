"""strip_pruning: back to a plain Keras model with the sparse weights baked in.

Layers are rebuilt from their configs and get their weights copied
(``tflite_export.cloning``), so the stripped model shares no variable with the pruned one.
"""

import keras

from kopt.pruning.wrapper import PruneLowMagnitude
from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_layer
from tflite_export.export_hooks import register_export_hook

__all__ = ["strip_pruning"]

PRUNE_ADVICE = (
    "Wrap its layers individually instead, e.g. `self.dense = "
    "kopt.pruning.prune_low_magnitude(keras.layers.Dense(10))` in its __init__."
)
STRIP_ADVICE = "Call `apply_masks()` on each PruneLowMagnitude layer it holds; `wrapper.layer` is the pruned layer."


def strip_pruning(model: keras.Model) -> keras.Model:
    """Removes every ``PruneLowMagnitude`` wrapper, keeping the pruned weights.

    Each wrapper is replaced by a copy of the layer it wraps (its original class
    and config) whose prunable weights are ``weight * mask``, so the zeros are
    exact even if the optimizer moved pruned entries after the last mask update.
    Other layers are copied with their weights. Sequential, functional and nested
    models keep their architecture; the result is not compiled.

    Args:
        model: A Sequential or functional ``keras.Model``, pruned or not.

    Returns:
        A new ``keras.Model`` without pruning wrappers or pruning variables.

    Raises:
        ValueError: If ``model`` is not a Sequential or functional model.

    Example:

    >>> import keras
    >>> from kopt.pruning import prune_low_magnitude
    >>> pruned = prune_low_magnitude(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    >>> [type(layer).__name__ for layer in strip_pruning(pruned).layers]
    ['Dense']
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"strip_pruning expects a keras.Model. Received: model={model!r}")

    def unwrap(layer):
        if isinstance(layer, PruneLowMagnitude):
            return copy_layer(layer.layer, weights=layer.masked_weights())
        return copy_layer(layer)

    return clone_graph_model(model, unwrap, action="strip", advice=STRIP_ADVICE)


def _prepare_for_export(model, mode):
    del mode  # every mode converts the plain layers with the zeros baked in
    return strip_pruning(model)


register_export_hook(PruneLowMagnitude, prepare=_prepare_for_export)
