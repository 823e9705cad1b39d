"""Per-frame layers in QAT: a ``TimeDistributed`` spatial layer as one layer over every frame.

``TimeDistributed(Conv2D)`` (a video model's per-frame convolution, a CRNN's
per-window features) applies its inner layer to each step of a sequence. QAT has
no rule for the wrapper, and the converter unrolls its loop: one op per frame,
with a slice before each. Before wrapping, QAT rewrites such a layer as three
(:func:`unwrapped_frames`):

* :class:`FoldSteps`: ``(batch, steps, *frame)`` to ``(batch * steps, *frame)``,
  a RESHAPE in the file that keeps its input's int8 grid;
* the inner layer itself, under the wrapper's name, which QAT quantizes like any
  layer of its kind (weights, output range, BatchNormalization folding); an inner
  model (a per-frame backbone) has its layers inlined there
  (:func:`kopt.quantization.splits.split_annotated`);
* :class:`UnfoldSteps`: back to ``(batch, steps, *out_frame)``.

The result computes what the wrapper did, in one op for all frames (the reshapes
are :mod:`tflite_export.time_folding`'s, which folds a float export the same way). The frame's
shape and the number of steps must be known; a wrapper around a recurrent layer
or around a layer from outside Keras is left as it is (and QAT then names it as
a layer it cannot quantize).

Example:

>>> import keras, numpy as np
>>> wrapped = keras.layers.TimeDistributed(keras.layers.Conv2D(2, 3), name="frame_conv")
>>> clip = keras.Input((4, 6, 6, 1))
>>> _ = keras.Model(clip, wrapped(clip))
>>> fold, inner, unfold = unwrapped_frames(wrapped)
>>> x = np.random.default_rng(0).random((3, 4, 6, 6, 1)).astype("float32")
>>> inner.name, bool(np.allclose(unfold(inner(fold(x))), wrapped(x), atol=1e-6))
('frame_conv', True)
"""

import keras

from tflite_export.time_folding import fold_steps
from tflite_export.time_folding import foldable
from tflite_export.time_folding import unfold_steps

__all__ = ["FoldSteps", "UnfoldSteps", "unwrapped_frames"]


@keras.saving.register_keras_serializable(package="kopt")
class FoldSteps(keras.layers.Layer):
    """Folds the steps of a sequence into the batch: ``(batch, steps, *frame)`` to ``(batch * steps, *frame)``."""

    def call(self, inputs):
        return fold_steps(inputs)

    def compute_output_shape(self, input_shape):
        batch, steps = input_shape[0], input_shape[1]
        return (None if batch is None or steps is None else batch * steps, *input_shape[2:])


@keras.saving.register_keras_serializable(package="kopt")
class UnfoldSteps(keras.layers.Layer):
    """Unfolds the batch into steps again: ``(batch * steps, *frame)`` to ``(batch, steps, *frame)``.

    Args:
        steps: The number of steps :class:`FoldSteps` folded.
        **kwargs: Passed to ``keras.layers.Layer``.
    """

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"UnfoldSteps needs a positive int number of steps. Received: steps={steps!r}")
        self.steps = steps

    def call(self, inputs):
        return unfold_steps(inputs, self.steps)

    def compute_output_shape(self, input_shape):
        batch = input_shape[0]
        return (None if batch is None else batch // self.steps, self.steps, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "steps": self.steps}


def unwrapped_frames(layer):
    """``(FoldSteps, inner layer named as the wrapper, UnfoldSteps)`` for a ``TimeDistributed``, or ``None``.

    ``None`` for anything else, and for a wrapper this rewrite does not cover (see the
    module docstring). A ``TimeDistributed(Dense)`` is not folded: a Dense reads the
    last axis of any input already (:func:`kopt.quantization.splits.unwrapped_dense`).
    """
    if not foldable(layer):  # a built TimeDistributed with known steps and frame, as the export folds it
        return None
    inner = layer.layer
    if (
        type(inner) is keras.layers.Dense
        or not type(inner).__module__.startswith("keras.")
        or isinstance(inner, (keras.layers.RNN, keras.layers.Bidirectional, keras.layers.Wrapper))
    ):
        return None
    shape = tuple(layer.get_build_config()["input_shape"])  # the shape it was built for
    copy = type(inner).from_config({**inner.get_config(), "name": layer.name})
    copy.build((None, *shape[2:]))
    copy.set_weights(inner.get_weights())
    return FoldSteps(name=f"{layer.name}_fold"), copy, UnfoldSteps(int(shape[1]), name=f"{layer.name}_unfold")
