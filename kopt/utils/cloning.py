"""Copying layers and cloning Sequential/functional models, shared by the techniques.

Pruning, quantization and the strip functions all rebuild a model layer by layer:
each layer is recreated from its config and gets its weights copied, so the new
model never shares a variable with the one it came from.
"""

import keras

__all__ = ["clone_graph_model", "copy_layer", "require_graph_model"]


def copy_layer(layer, weights=None):
    """Rebuilds ``layer`` from its config and gives it ``weights`` (default: its own).

    Args:
        layer: A Keras layer.
        weights: NumPy arrays in ``layer.weights`` order, or ``None`` to copy the
            layer's current values.

    Returns:
        A new layer of the same class, built if ``layer`` was built; a built
        layer without any state (Flatten, Lambda...) is returned as is.

    Example:

    >>> import keras
    >>> dense = keras.layers.Dense(2)
    >>> dense.build((None, 3))
    >>> copy = copy_layer(dense)
    >>> copy is dense, copy.kernel.shape
    (False, (3, 2))
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


def clone_graph_model(model, layer_fn, *, action, advice):
    """``keras.models.clone_model`` over nested models, refusing subclassed ones.

    Args:
        model: The model to clone.
        layer_fn: Called on each layer (nested Sequential and functional models
            are entered, not passed); returns its replacement.
        action: What the caller does (``"prune"``, ``"quantize"``...), for the error.
        advice: What to do instead with a subclassed model, for the error.

    Returns:
        The cloned model.

    Raises:
        ValueError: If ``model`` or a nested model is subclassed.
    """
    require_graph_model(model, action=action, advice=advice)

    def clone_function(layer):
        if isinstance(layer, keras.Model):
            require_graph_model(layer, action=action, advice=advice)
        return layer_fn(layer)

    return keras.models.clone_model(model, clone_function=clone_function, recursive=True)


def require_graph_model(model, *, action, advice):
    """Raises ``ValueError`` unless ``model`` is Sequential or functional."""
    if isinstance(model, (keras.Sequential, keras.Function)):
        return
    raise ValueError(
        f"Cannot {action} the subclassed model {model.name!r} ({type(model).__name__}): its layers "
        f"and their connections are only known to its Python code, so it cannot be cloned. {advice}"
    )
