"""The model as ``model.predict`` runs it: layers that act only in training stay out of the file.

Keras' augmentation layers (``RandomFlip``, ``RandomRotation``, ``RandomZoom``,
``MixUp``...) take ``training=True`` by default. ``model.predict`` calls the
model with ``training=False``; ``model.export``, which the converter reads, calls
it with no ``training`` at all, so such a layer resolved ``training=True`` and,
since Keras keeps the resolved value for the rest of the call, every layer after
it ran in training mode too: the random ops were exported (the conversion failed
on ``ImageProjectiveTransformV3`` and ``StatelessRandomUniformV2``, or with Flex
ops the file augmented every image it classified), BatchNormalization normalized
each batch by its own statistics, and a quantization-aware model exported its
range updates. While exporting a model that holds such a layer,
:func:`inference_calls` makes the model's own call pass ``training=False``, which
reaches every layer, so the file computes what ``model.predict`` computes.

Example:

>>> import keras
>>> active_by_default(keras.layers.RandomFlip()), active_by_default(keras.layers.Dropout(0.5))
(True, False)
"""

import contextlib
import functools
import inspect

import keras

__all__ = ["active_by_default", "inference_calls", "is_augmentation", "layers_active_by_default"]


def active_by_default(layer) -> bool:
    """Whether ``layer``'s ``call`` runs in training mode unless told otherwise (``training=True`` by default)."""
    try:
        parameter = inspect.signature(type(layer).call).parameters.get("training")
    except (TypeError, ValueError):  # no signature to read
        return False
    return parameter is not None and parameter.default is True


def is_augmentation(layer) -> bool:
    """A layer without weights that acts only in training (``RandomFlip``, ``MixUp``...): identity in the file.

    Exported with ``training=False`` (see :func:`inference_calls`), as ``model.predict``
    runs it, it leaves its input as it is.
    """
    return active_by_default(layer) and not layer.weights


def layers_active_by_default(model) -> list:
    """The layers of ``model``, nested models' included, that :func:`active_by_default` finds."""
    found, seen = [], set()

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if active_by_default(layer):
            found.append(layer)
        for inner in getattr(layer, "layers", None) or []:
            visit(inner)
        if isinstance(layer, keras.layers.Wrapper):
            visit(layer.layer)

    visit(model)
    return found


@contextlib.contextmanager
def inference_calls(model):
    """Within this context, calling ``model`` passes ``training=False`` if it holds a layer that trains by default.

    Keras' export reads the model's ``__call__`` attribute, so the model is given
    one of its own (set around Keras' attribute tracking and removed on exit);
    a model without such a layer is left as it is. Yields the layers found with
    :func:`layers_active_by_default`.
    """
    layers = layers_active_by_default(model)
    patched = bool(layers) and "__call__" not in vars(model)
    if patched:
        object.__setattr__(model, "__call__", functools.partial(type(model).__call__, model, training=False))
    try:
        yield layers
    finally:
        if patched:
            object.__delattr__(model, "__call__")
