"""How another library's training layers get ready for conversion, without tflite_export knowing them.

Pruning masks, clustering indices and fake quantization are training devices:
the converter must see the plain layer with its final weights, or, for
quantization-aware training, the graph that carries the learned ranges. The
library that defines such a layer registers an :class:`ExportHook` for its classes
when it is imported, and :func:`tflite_export.convert` applies the hooks of the
layers it finds, so ``tflite_export`` imports no technique and works alone.

* ``prepare(model, mode) -> model``: returns the model to convert in ``mode``,
  usually with the library's wrappers stripped (weights baked in). It may return
  ``model`` unchanged when the wrappers must stay (a quantization-aware model
  converted to int8).
* ``lowering``: a callable returning a context manager under which the model is
  exported for conversion. Its presence marks a model as quantization-aware: the
  converter reads the ranges the model learned instead of calibrating its own,
  and refuses float modes.

Example:

>>> import contextlib, keras
>>> class Masked(keras.layers.Dense):
...     pass
>>> _ = register_export_hook(Masked, prepare=lambda model, mode: model)
>>> model = keras.Sequential([keras.Input((3,)), Masked(2)])
>>> len(hooks_of(model)), is_quantization_aware(model)
(1, False)
"""

import dataclasses
from collections.abc import Callable

import keras

from tflite_export.layers import all_layers

__all__ = [
    "ExportHook",
    "hooks_of",
    "is_quantization_aware",
    "lowering_of",
    "prepare_for_export",
    "register_export_hook",
]

_HOOKS = {}


@dataclasses.dataclass(frozen=True)
class ExportHook:
    """What the converter does for the layers of one library; see the module docstring."""

    prepare: Callable | None = None
    lowering: Callable | None = None


def register_export_hook(layer_classes, *, prepare=None, lowering=None):
    """Registers the hook of ``layer_classes`` (a class or a tuple of classes); subclasses share it.

    Classes given together share one hook, which then runs once per model.

    Raises:
        TypeError: ``layer_classes`` holds something other than a ``keras.layers.Layer``
            subclass, or ``prepare``/``lowering`` is given but not callable.
        ValueError: neither ``prepare`` nor ``lowering`` is given.
    """
    classes = layer_classes if isinstance(layer_classes, tuple) else (layer_classes,)
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, keras.layers.Layer)):
            raise TypeError(f"layer_classes must be keras.layers.Layer subclasses. Received: {cls!r}")
    for name, value in (("prepare", prepare), ("lowering", lowering)):
        if value is not None and not callable(value):
            raise TypeError(f"{name} must be callable or None. Received: {name}={value!r}")
    if prepare is None and lowering is None:
        raise ValueError(f"An export hook for {classes} needs prepare, lowering or both. Received neither.")
    hook = ExportHook(prepare=prepare, lowering=lowering)
    for cls in classes:
        _HOOKS[cls] = hook
    return hook


def hooks_of(model):
    """The registered hooks of ``model``'s layers, each once, in the order their layers come."""
    found = []
    for layer in all_layers(model):
        for cls in type(layer).__mro__:
            hook = _HOOKS.get(cls)
            if hook is not None:
                if hook not in found:
                    found.append(hook)
                break
    return found


def prepare_for_export(model, mode):
    """Applies every ``prepare`` hook of ``model`` for a conversion in ``mode``."""
    for hook in hooks_of(model):
        if hook.prepare is not None:
            model = hook.prepare(model, mode)
    return model


def lowering_of(model):
    """The ``lowering`` of the first quantization-aware layer of ``model``, or None."""
    for hook in hooks_of(model):
        if hook.lowering is not None:
            return hook.lowering
    return None


def is_quantization_aware(model):
    """Whether ``model`` holds layers whose hook has a ``lowering`` (learned quantization ranges)."""
    return lowering_of(model) is not None
