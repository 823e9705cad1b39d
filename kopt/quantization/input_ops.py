"""Pixel preprocessing written as ``keras.ops`` on the input, quantized as ``Rescaling`` layers.

Keras' transfer-learning guide builds ``x = preprocess_input(inputs)`` into the
model. In Keras 3 that is a few operation nodes, not layers: ``x / 127.5`` then
``x - 1`` ("tf" mode), ``x / 255`` then ``x + (-mean)`` and ``x / std``
("torch"), or the channels reversed then ``x + (-mean)`` ("caffe"). QAT cannot
wrap an operation, so it gave those tensors no range; the converter then
quantized the division and the subtraction itself, with a grid of its own after
each, and the int8 file disagreed with the QAT model (agreement 0.38 on an
untrained MobileNetV2 behind "tf" preprocessing, 1.0 with the same scaling
written as a ``Rescaling`` layer).

While a model is annotated, each such operation on the input side of the model
(before any layer) that multiplies, divides, adds or subtracts a constant, a
scalar or one value per channel, is replaced by the ``Rescaling`` computing it,
which QAT quantizes as the converter will run it (a 1x1 int8 depthwise
convolution). Channel reversal, casts and flips between them are kept: they move
values without changing them. Operations deeper in the network (``x + 3.0``
before a ``relu6``) are left as they are.

Example:

>>> inputs = keras.Input((4, 4, 3))
>>> model = keras.Model(inputs, inputs / 127.5 - 1.0)
>>> [type(op).__name__ for op in model.operations]
['InputLayer', 'TrueDivide', 'Subtract']
>>> divide = as_rescaling(model.operations[1], inputs, 127.5)
>>> round(divide.scale * 127.5, 6), divide.offset, as_rescaling(model.operations[2], inputs, 1.0).offset
(1.0, 0.0, -1.0)
"""

import keras
import numpy as np

__all__ = ["FRONT_KEEPING_OPS", "FrontOperations", "as_rescaling"]

# Operations that move input values without changing them, passed on the input side.
FRONT_KEEPING_OPS = ("Cast", "Flip", "GetItem", "Stack")
_AFFINE = ("TrueDivide", "Divide", "Multiply", "Add", "Subtract")


class FrontOperations:
    """Calls the operation nodes of a model being cloned, each as a ``Rescaling`` where it is input preprocessing.

    One per clone: it remembers the new tensors computed from the model's inputs by
    front operations only, and for a ``Rescaling``'s output its ``(source, scale,
    offset)``, so that a following affine operation merges into it (``x / 127.5 - 1``
    is one ``Rescaling``, rounded once by the file, not after each step).

    Args:
        wrap: Applied to each replacing ``Rescaling`` (QAT's annotation).
    """

    def __init__(self, wrap):
        self.wrap = wrap
        self.front = {}  # id -> (tensor, affine or None); the tensor is kept, so its id is never reused

    def call(self, node, args, kwargs):
        """The outputs of ``node(*args, **kwargs)``, or ``None`` where the caller calls ``node`` itself."""
        if isinstance(node, keras.layers.Layer):
            return None
        tensors = [value for value in keras.tree.flatten((args, kwargs)) if isinstance(value, keras.KerasTensor)]
        if not tensors or not all(_is_front(tensor, self.front) for tensor in tensors):
            return None
        if type(node).__name__ in FRONT_KEEPING_OPS:
            outputs = node(*args, **kwargs)
            for tensor in keras.tree.flatten(outputs):
                self.front[id(tensor)] = (tensor, None)
            return outputs
        rescaling = as_rescaling(node, *args, **kwargs)
        if rescaling is None:
            return None
        source, scale, offset = tensors[0], _array(rescaling.scale), _array(rescaling.offset)
        earlier = self.front.get(id(source), (None, None))[1]
        if earlier is not None:
            source, first_scale, first_offset = earlier
            scale, offset = first_scale * scale, first_offset * scale + offset
            rescaling = keras.layers.Rescaling(
                scale=_plain(scale), offset=_plain(offset), name=rescaling.name, dtype=rescaling.dtype_policy
            )
        outputs = self.wrap(rescaling)(source)
        self.front[id(outputs)] = (outputs, (source, scale, offset))
        return outputs


def _is_front(tensor, front):
    if id(tensor) in front:
        return True
    history = getattr(tensor, "_keras_history", None)  # where a Keras tensor came from
    return history is not None and isinstance(history.operation, keras.layers.InputLayer)


def as_rescaling(operation, *args, **kwargs):
    """The ``Rescaling`` computing ``operation(*args)``, or ``None`` where it is no per-channel affine map.

    Args:
        operation: A ``keras.Operation`` node that is not a layer.
        *args: Its call arguments: one ``KerasTensor`` and one constant.
        **kwargs: Its keyword arguments; any makes it not replaceable.

    Returns:
        A ``keras.layers.Rescaling`` named as ``operation``, or ``None``.
    """
    name = type(operation).__name__
    if name not in _AFFINE or kwargs or len(args) != 2:
        return None
    tensors = [isinstance(arg, keras.KerasTensor) for arg in args]
    if sum(tensors) != 1:
        return None
    tensor = args[tensors.index(True)]
    constant = _per_channel(args[1 - tensors.index(True)], tensor)
    if constant is None:
        return None
    tensor_first = tensors[0]
    if name in ("TrueDivide", "Divide"):
        if not tensor_first or not np.all(constant != 0):
            return None
        scale, offset = 1.0 / constant, 0.0
    elif name == "Multiply":
        scale, offset = constant, 0.0
    elif name == "Add":
        scale, offset = 1.0, constant
    else:  # Subtract: x - c, or c - x
        scale, offset = (1.0, -constant) if tensor_first else (-1.0, constant)
    return keras.layers.Rescaling(
        scale=_plain(scale), offset=_plain(offset), name=operation.name, dtype=tensor.dtype or "float32"
    )


def _per_channel(value, tensor):
    """``value`` as a float64 scalar or ``(channels,)`` array, if it broadcasts over the last axis only."""
    if isinstance(value, bool):
        return None
    try:
        array = np.asarray(keras.ops.convert_to_numpy(value) if hasattr(value, "shape") else value, "float64")
    except (TypeError, ValueError):
        return None
    if not np.all(np.isfinite(array)):
        return None
    if array.size == 1:
        return array.reshape(())
    channels = tensor.shape[-1]
    if channels is None or array.size != channels or array.shape[-1] != channels:
        return None
    if any(dim != 1 for dim in array.shape[:-1]) or array.ndim > len(tensor.shape):
        return None
    return array.reshape(-1)


def _array(value):
    return np.asarray(value, "float64").reshape(-1) if np.ndim(value) else np.asarray(value, "float64")


def _plain(value):
    """A float or a list of floats, as Rescaling's config stores them."""
    value = np.asarray(value, "float64")
    return float(value) if value.ndim == 0 else value.astype("float32").tolist()
