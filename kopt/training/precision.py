"""Mixed precision: Keras' dtype policies for a run, float32 where kopt needs it.

Under ``mixed_float16`` or ``mixed_bfloat16`` Keras layers compute in half
precision and keep float32 variables; ``compile`` wraps the optimizer in a
``LossScaleOptimizer`` for float16. kopt's own variables (pruning masks and
step, clustering centroids, quantizer ranges) are created in float32 (or an
integer type) whatever the policy. Two things must run in float32 and get a
float32 copy of the model from :func:`to_float32`: quantization-aware training
(integer grids need float32) and TFLite export, so the exported file is the
same as without mixed precision.
"""

import contextlib
from collections.abc import Iterator

import keras

from kopt.errors import ConfigError
from tflite_export.cloning import clone_graph_model
from tflite_export.layers import leaf_layers

__all__ = ["PRECISIONS", "precision_policy", "to_float32"]

PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Sets Keras' global dtype policy for the ``with`` block, then restores it.

    Args:
        name: One of :data:`PRECISIONS`; ``"none"`` is float32.

    Raises:
        ConfigError: For another name, before the policy changes.

    Example:

    >>> import keras
    >>> with precision_policy("mixed_bfloat16"):
    ...     layer = keras.layers.Dense(2)
    >>> layer.compute_dtype, layer.variable_dtype, keras.mixed_precision.global_policy().name
    ('bfloat16', 'float32', 'float32')
    """
    if name not in PRECISIONS:
        raise ConfigError("mixed_precision", name, f"must be one of {', '.join(PRECISIONS)}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32" if name == "none" else name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def to_float32(model: keras.Model) -> keras.Model:
    """Returns ``model`` itself if every layer computes in float32, else a float32 copy.

    The copy has the same architecture and weights with every layer's dtype
    policy set to float32; the variables are float32 under mixed precision
    already, so the values are exact.

    Args:
        model: A Sequential or functional ``keras.Model``.

    Raises:
        ValueError: If a layer computes in reduced precision and the model is
            subclassed, so it cannot be cloned.

    Example:

    >>> import keras
    >>> with precision_policy("mixed_float16"):
    ...     model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> to_float32(model).layers[0].compute_dtype
    'float32'
    """
    if all(layer.compute_dtype == "float32" for layer in leaf_layers(model)) and model.compute_dtype == "float32":
        return model
    with precision_policy("none"):
        copy = clone_graph_model(
            model,
            _float32_layer,
            action="convert to float32",
            advice="Build it under keras.mixed_precision.set_global_policy('float32') and copy the weights.",
        )
    return copy


def _float32_layer(layer):
    config = layer.get_config()
    config["dtype"] = "float32"
    clone = type(layer).from_config(config)
    if layer.built:
        build_config = layer.get_build_config()
        if build_config and not clone.built:
            clone.build_from_config(build_config)
        clone.set_weights(layer.get_weights())
    return clone
