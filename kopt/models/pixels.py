"""Whether a model scales its own pixels: the input range it was built to read.

Many image models take 8-bit pixel values, 0 to 255, and scale them in their
first layer: Keras' image-classification tutorial begins with
``Rescaling(1 / 255)``, and ``keras.applications`` EfficientNet, EfficientNetV2,
MobileNetV3 and ConvNeXt begin with a ``Rescaling`` or a ``Normalization`` in
ImageNet's 0-255 units. Fed images already in ``[0, 1]``, such a model scales
them twice: it trains on inputs 255 times too small (BatchNormalization's
moving variance then lags far behind the batches', and the trained model
classifies everything alike), and its exported file expects inputs the
application will not give it. :func:`pixel_scaling_layer` finds that layer, so
that ``kopt-optimize`` feeds such a model the pixel values it was built for.

Example:

>>> inputs = keras.Input((8, 8, 3))
>>> x = keras.layers.RandomFlip(name="flip")(inputs)
>>> x = keras.layers.Rescaling(1 / 255, name="scale")(x)
>>> model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
>>> pixel_scaling_layer(model).name
'scale'
"""

import keras
import numpy as np

from kopt.utils.model_graph import OUTPUT
from kopt.utils.model_graph import consumers
from tflite_export.cloning import inline_nested_models
from tflite_export.inference import is_augmentation

__all__ = ["pixel_scaling_layer", "with_pixel_scaling"]

# A layer scaling by at most this much takes 0-255 values to about [0, 1] or [-1, 1].
_LARGEST_PIXEL_SCALE = 1 / 100
# A Normalization whose mean is above this was fitted on (or given) 0-255 values.
_SMALLEST_PIXEL_MEAN = 2.0
# Layers before the scaling that do not change the range of the values.
_RANGE_KEEPING = (keras.layers.Resizing, keras.layers.CenterCrop, keras.layers.InputLayer)
_END = "end of the model"
# keras.ops nodes before the scaling that do not change the range (the channel reversal arrives as its Stack).
_RANGE_KEEPING_OPS = ("Cast", "Flip", "Stack")


def pixel_scaling_layer(model: keras.Model) -> keras.Operation | None:
    """The layer by which ``model`` shows it reads 0-255 pixel values, or ``None``.

    Follows the model's first layers from its input, passing augmentation layers
    (``RandomFlip``...), ``Resizing`` and ``CenterCrop``, and entering a nested
    model (an application used as a backbone). The first other layer decides: a
    ``Rescaling`` by at most 1/100 (1/255, or 1/127.5 with offset -1) or a
    ``Normalization`` whose mean exceeds 2 (ImageNet's, in 0-255 units) is
    returned; anything else means the model reads the values as given. The same
    goes for ``keras.ops`` calls on the input, as an application's
    ``preprocess_input`` inside the model writes them: ``x / c`` with ``c`` of at
    least 100 ("tf" and "torch" modes) or ``x + mean`` in 0-255 units after the
    channel reversal ("caffe" mode) is returned as that operation.

    Args:
        model: A ``keras.Model`` with one input.

    Returns:
        The ``Rescaling`` or ``Normalization`` layer, or ``None``.
    """
    found, _ = _scan(model)
    return found.operation if isinstance(found, _Op) else found


def with_pixel_scaling(model: keras.Model, levels: int, *, name: str = "pixel_scaling") -> keras.Model:
    """``model`` made to read 0-``levels`` pixel values: a ``Rescaling(1 / levels)`` before its first layer.

    For a model built to read ``[0, 1]`` images that must read what another
    model reads, such as a built-in distillation student beside a teacher that
    scales its own pixels. The result is one flat functional model (the layers
    of ``model`` are copied, so ``model`` itself is left as it was), and
    :func:`pixel_scaling_layer` finds the new layer in it.

    Args:
        model: A Sequential or functional model with one input that reads the
            values as given.
        levels: The largest pixel value, 255 for 8-bit images.
        name: The name of the new ``Rescaling`` layer.

    Returns:
        A ``keras.Model`` named as ``model`` that computes ``model(x / levels)``.

    Raises:
        ValueError: If ``levels`` is not a positive number, ``model`` has more
            than one input, already scales its pixels, or has a layer called
            ``name``.

    Example:

    >>> inputs = keras.Input((4, 4, 1))
    >>> model = keras.Model(inputs, keras.layers.Dense(2, name="d")(keras.layers.Flatten(name="f")(inputs)))
    >>> scaled = with_pixel_scaling(model, 255)
    >>> [layer.name for layer in scaled.layers][1:]
    ['pixel_scaling', 'f', 'd']
    >>> pixel_scaling_layer(scaled).name
    'pixel_scaling'
    """
    if isinstance(levels, bool) or not isinstance(levels, (int, float)) or not levels > 0:
        raise ValueError(f"levels must be a positive number, the largest pixel value. Received: levels={levels!r}")
    if len(getattr(model, "inputs", None) or []) != 1:
        raise ValueError(f"Model {model.name!r} must have exactly one input to read pixels; it has {model.inputs}")
    found = pixel_scaling_layer(model)
    if found is not None:
        raise ValueError(f"Model {model.name!r} already scales its pixels (layer {found.name!r}); it needs no other")
    if any(layer.name == name for layer in model.layers):
        raise ValueError(f"Model {model.name!r} already has a layer named {name!r}; pass another name=")
    source = model.inputs[0]
    inputs = keras.Input(batch_shape=source.shape, dtype=source.dtype, name=model.layers[0].name)
    scaled = keras.layers.Rescaling(1 / levels, name=name)(inputs)
    nested = keras.Model(inputs, model(scaled), name=model.name)
    return inline_nested_models(nested, action="add pixel scaling to", advice="build the model with a Rescaling")


def _scan(model):
    """``(scaling layer or None, whether every layer of ``model`` keeps the range)``."""
    for layer in _chain(model):
        if layer is None:  # several inputs, or a branch: no single first layer to read
            return None, False
        if layer is _END:
            return None, True
        if isinstance(layer, keras.Model):  # a backbone, or a Sequential block of augmentation layers
            found, through = _scan(layer)
            if not through:
                return found, False
        elif isinstance(layer, _Op):
            if layer.class_name not in _RANGE_KEEPING_OPS:
                return (layer if _op_scales_pixels(layer) else None), False
        elif not isinstance(layer, _RANGE_KEEPING) and not is_augmentation(layer):
            return (layer if _scales_pixels(layer) else None), False
    return None, False


def _scales_pixels(layer):
    if isinstance(layer, keras.layers.Rescaling):
        scale = np.abs(np.asarray(layer.scale, dtype="float64"))
        return scale.size > 0 and 0 < float(scale.max()) <= _LARGEST_PIXEL_SCALE
    if isinstance(layer, keras.layers.Normalization) and not layer.invert:
        mean = getattr(layer, "mean", None)
        if mean is None:
            return False
        return float(np.max(np.abs(keras.ops.convert_to_numpy(mean)))) > _SMALLEST_PIXEL_MEAN
    return False


def _op_scales_pixels(op):
    """``x / c`` with c of at least 100, ``x * c`` with c at most 1/100, or ``x +- mean`` in 0-255 units."""
    if len(op.constants) != 1 or op.constants[0].size == 0:
        return False
    constant = np.abs(op.constants[0])
    if op.class_name == "TrueDivide":
        return float(constant.min()) >= 1 / _LARGEST_PIXEL_SCALE
    if op.class_name == "Multiply":
        return 0 < float(constant.max()) <= _LARGEST_PIXEL_SCALE
    if op.class_name in ("Add", "Subtract"):
        return float(constant.max()) > _SMALLEST_PIXEL_MEAN
    return False


def _chain(model):
    """The layers on the one path from ``model``'s input, then :data:`_END`; ``None`` where the path branches.

    A ``keras.ops`` call in a functional model (``x / 127.5``, as ``preprocess_input``
    writes it) is a node that ``model.layers`` does not list: it comes as an
    :class:`_Op` read from the model's config. The channel reversal of "caffe"
    preprocessing (three ``x[..., i]`` stacked again) is passed as one step.
    """
    if len(getattr(model, "inputs", None) or []) != 1:
        yield None
        return
    if isinstance(model, keras.Sequential):
        yield from model.layers
        yield _END
        return
    readers = consumers(model)
    entries = {entry["name"]: entry for entry in model.get_config()["layers"]}
    layers = {layer.name: layer for layer in model.layers}
    operations = {operation.name: operation for operation in model.operations}
    name = next(layer.name for layer in model.layers if isinstance(layer, keras.layers.InputLayer))
    while True:
        following = readers.get(name, [])
        if following == [OUTPUT]:
            yield _END
            return
        following = _past_channel_reversal(following, readers, entries)
        if len(following) != 1 or OUTPUT in following:
            yield None
            return
        name = following[0]
        if name in layers:
            yield layers[name]
        else:
            yield _Op(operations[name], entries[name]["class_name"], _constants(entries[name]))


class _Op:
    """A ``keras.ops`` node of a functional model: the operation, its class name and its constant arguments."""

    def __init__(self, operation, class_name, constants):
        self.operation = operation
        self.class_name = class_name
        self.constants = constants


def _constants(entry):
    """The non-tensor arguments of a node's one call, as float arrays (a scalar or a stored tensor)."""
    nodes = entry.get("inbound_nodes") or []
    if len(nodes) != 1:
        return []
    found = []
    for value in nodes[0].get("args", []):
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            found.append(np.asarray(value, "float64"))
        elif isinstance(value, dict) and value.get("class_name") == "__tensor__":
            found.append(np.asarray(value["config"]["value"], "float64"))
    return found


def _past_channel_reversal(following, readers, entries):
    """``[stack node]`` in place of the ``GetItem`` nodes that pick channels for one ``Stack``; else as given."""
    if len(following) < 2 or any(entries.get(name, {}).get("class_name") != "GetItem" for name in following):
        return following
    stacks = {tuple(readers.get(name, [])) for name in following}
    if len(stacks) != 1 or len(next(iter(stacks))) != 1:
        return following
    stack = next(iter(stacks))[0]
    return [stack] if entries.get(stack, {}).get("class_name") == "Stack" else following
