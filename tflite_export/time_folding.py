"""Per-frame layers exported as one op over every frame, not one op per frame.

``keras.layers.TimeDistributed`` applies its inner layer to each step of a
sequence (each frame of a clip). Exported as Keras runs it, the converter writes
a slice, the inner layer's ops and a pack for every step: a 8-frame clip through
two per-frame convolutions is 16 CONV_2D ops and 33 slices. The inner layer acts
on each batch entry alone, so the steps can be folded into the batch instead:
one reshape, the inner layer's ops once, one reshape back. The function is the
same; on LiteRT with XNNPACK the file is several times faster (BENCHMARKS.md,
``time_folding``).

While :func:`tflite_export.convert` exports a model, :func:`folded_time_distributed`
has each foldable ``TimeDistributed`` layer compute that way. A layer is folded when
its steps and frame shape are known, its inner layer is not stateful, and no mask
reaches it (a masked call runs as Keras runs it).

Example:

>>> import keras, numpy as np
>>> clip = keras.Input((4, 6, 6, 1))
>>> model = keras.Model(clip, keras.layers.TimeDistributed(keras.layers.Conv2D(2, 3), name="frames")(clip))
>>> x = np.random.default_rng(0).random((2, 4, 6, 6, 1)).astype("float32")
>>> with folded_time_distributed(model) as names:
...     folded = model(x)
>>> names, bool(np.allclose(folded, model(x), atol=1e-6))
(['frames'], True)
"""

import contextlib
import functools

import keras
from keras import ops

from tflite_export.layers import all_layers

__all__ = ["fold_steps", "foldable", "folded_time_distributed", "unfold_steps"]


def foldable(layer) -> bool:
    """Whether ``layer`` is a ``TimeDistributed`` that :func:`folded_time_distributed` folds."""
    if not isinstance(layer, keras.layers.TimeDistributed) or getattr(layer.layer, "stateful", False):
        return False
    shape = (layer.get_build_config() or {}).get("input_shape") if layer.built else None
    return bool(shape) and len(shape) >= 3 and all(dim is not None for dim in shape[1:])


@contextlib.contextmanager
def folded_time_distributed(model):
    """Within this context, each :func:`foldable` layer of ``model`` (nested models' included) runs folded.

    Yields the names of the layers folded. Each gets a ``call`` of its own, set
    around Keras' attribute tracking and removed on exit.
    """
    layers = [layer for layer in all_layers(model) if foldable(layer) and "call" not in vars(layer)]
    for layer in layers:
        object.__setattr__(layer, "call", functools.partial(_folded_call, layer))
    try:
        yield [layer.name for layer in layers]
    finally:
        for layer in layers:
            object.__delattr__(layer, "call")


def fold_steps(sequence):
    """``(batch, steps, *frame)`` to ``(batch * steps, *frame)``; the frame's shape must be known."""
    return ops.reshape(sequence, (-1, *sequence.shape[2:]))


def unfold_steps(frames, steps):
    """``(batch * steps, *frame)`` back to ``(batch, steps, *frame)``."""
    return ops.reshape(frames, (-1, steps, *frames.shape[1:]))


def _folded_call(layer, inputs, training=None, mask=None):
    if mask is not None:
        return type(layer).call(layer, inputs, training=training, mask=mask)
    steps = int(layer.get_build_config()["input_shape"][1])
    outputs = layer.layer(fold_steps(inputs), training=training)
    return keras.tree.map_structure(lambda tensor: unfold_steps(tensor, steps), outputs)
