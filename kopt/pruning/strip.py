"""strip_pruning: back to a plain Keras model with the sparse weights baked in.

Also home of the model-cloning helpers ``prune_low_magnitude`` shares: layers are
rebuilt from their configs and get their weights copied, so neither the pruned
nor the stripped model shares a variable with the model it came from.
"""

import keras

from kopt.pruning.wrapper import PruneLowMagnitude

__all__ = ["strip_pruning"]


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

    return clone_graph_model(model, unwrap, action="strip")


def copy_layer(layer, weights=None):
    """Rebuilds ``layer`` from its config and gives it ``weights`` (default: its own).

    Args:
        layer: A Keras layer.
        weights: NumPy arrays in ``layer.weights`` order, or ``None`` to copy the
            layer's current values.

    Returns:
        A new layer of the same class, built if ``layer`` was built; a built
        layer without any state (Flatten, Lambda...) is returned as is.
    """
    if layer.built and not layer.variables and weights is None:
        # Nothing to copy, and Keras refuses to rebuild a Lambda holding a Python
        # lambda from its config.
        return layer
    clone = type(layer).from_config(layer.get_config())
    build_config = layer.get_build_config() if layer.built else None
    if build_config and not clone.built:
        clone.build_from_config(build_config)
    if layer.built:
        clone.set_weights(layer.get_weights() if weights is None else weights)
    return clone


def clone_graph_model(model, layer_fn, *, action):
    """``keras.models.clone_model`` over nested models, refusing subclassed ones.

    Args:
        model: The model to clone.
        layer_fn: Called on each layer (nested Sequential and functional models
            are entered, not passed); returns its replacement.
        action: ``"prune"`` or ``"strip"``, for the error message.

    Returns:
        The cloned model.

    Raises:
        ValueError: If ``model`` or a nested model is subclassed.
    """
    require_graph_model(model, action=action)

    def clone_function(layer):
        if isinstance(layer, keras.Model):
            require_graph_model(layer, action=action)
        return layer_fn(layer)

    return keras.models.clone_model(model, clone_function=clone_function, recursive=True)


def require_graph_model(model, *, action):
    """Raises ``ValueError`` unless ``model`` is Sequential or functional."""
    if isinstance(model, (keras.Sequential, keras.Function)):
        return
    if action == "prune":
        advice = (
            "Wrap its layers individually instead, e.g. `self.dense = "
            "kopt.pruning.prune_low_magnitude(keras.layers.Dense(10))` in its __init__."
        )
    else:
        advice = "Call `apply_masks()` on each PruneLowMagnitude layer it holds; `wrapper.layer` is the pruned layer."
    raise ValueError(
        f"Cannot {action} the subclassed model {model.name!r} ({type(model).__name__}): its layers "
        f"and their connections are only known to its Python code, so it cannot be cloned. {advice}"
    )
