"""Re-estimating BatchNormalization's moving statistics after training.

BatchNormalization normalizes each training batch by that batch's mean and
variance, and keeps exponential moving averages of them (momentum 0.99 in Keras)
for inference. The averages lag behind the weights: they forget their
initial values (mean 0, variance 1) at 1% a step and still carry statistics of
weights from hundreds of steps ago. After a short training (a small dataset, a
few epochs of fine-tuning, a pruning step that changed the weights at once) the
model ``predict`` runs can be far worse than the one that trained: a CNN trained
300 steps on 2,400 CIFAR-10 images classified every image alike (50.2% on two
classes) with its moving statistics, and 89.5% with statistics re-estimated on
20 training batches. Quantization-aware training folds the moving statistics
into the convolution before it trains, so it inherits them.

:func:`reestimate_batch_norm` runs the trained model over training batches in
inference mode, but with every BatchNormalization computing batch statistics,
and sets its moving mean and variance to their average over those batches (the
cumulative average, as ``torch.optim.swa_utils.update_bn`` and NNCF's
BatchNorm adaptation do). Dropout and augmentation layers stay off, so the
statistics are those of the inputs the model will classify; a layer with
``trainable=False`` (a frozen backbone's) keeps its statistics.

Example:

>>> import numpy as np
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(name="bn")])
>>> batches = [np.full((4, 3), 2.0, "float32"), np.full((4, 3), 4.0, "float32")]
>>> reestimate_batch_norm(model, batches)
['bn']
>>> keras.ops.convert_to_numpy(model.get_layer("bn").moving_mean).tolist()
[3.0, 3.0, 3.0]
"""

import contextlib
import functools
import itertools
from collections.abc import Iterable
from typing import Any

import keras

__all__ = ["DEFAULT_BATCHES", "batch_norm_layers", "reestimate_batch_norm"]

DEFAULT_BATCHES = 50  # 3,200 examples at batch 64: NNCF's BatchNorm adaptation reads 2,000 by default


def batch_norm_layers(model: keras.Model) -> list:
    """The ``BatchNormalization`` layers whose statistics :func:`reestimate_batch_norm` sets.

    Those of ``model`` and of models nested in it, except layers with
    ``trainable=False`` (which keep their statistics in training too), with
    ``renorm=True``, or inside a wrapper (a quantization wrapper's own arithmetic
    decides what its layer computes).
    """
    found, seen = [], set()

    def visit(layer):
        if id(layer) in seen or isinstance(layer, keras.layers.Wrapper):
            return
        seen.add(id(layer))
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.trainable and not layer.renorm:
                found.append(layer)
        for inner in getattr(layer, "layers", None) or []:
            visit(inner)

    for layer in model.layers:
        visit(layer)
    return found


def reestimate_batch_norm(model: keras.Model, data: Iterable[Any], *, batches: int = DEFAULT_BATCHES) -> list[str]:
    """Sets every BatchNormalization's moving statistics to their average over ``data``.

    Args:
        model: A trained ``keras.Model``.
        data: Batches of inputs, or ``(inputs, labels)`` and ``(inputs, labels,
            weights)`` tuples (a ``tf.data.Dataset`` of training batches, or a list
            of arrays); the first ``batches`` are read.
        batches: How many batches to average over, at least 1.

    Returns:
        The names of the layers whose statistics were set (empty if the model has none,
        in which case ``data`` is not read).

    Raises:
        ValueError: If ``batches`` is not a positive integer, or ``data`` holds no batch.
    """
    if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
        raise ValueError(f"`batches` must be an integer of at least 1. Received: batches={batches!r}")
    layers = batch_norm_layers(model)
    if not layers:
        return []
    read = 0
    with _batch_statistics(model, layers) as set_momentum:
        for batch in itertools.islice(iter(data), batches):
            # Momentum k / (k + 1) makes the moving value the mean of the k + 1 batches so far.
            set_momentum(read / (read + 1))
            model.predict_on_batch(_inputs(batch))
            read += 1
    if not read:
        raise ValueError(f"`data` holds no batch to re-estimate the statistics of {model.name!r} on")
    return [layer.name for layer in layers]


@contextlib.contextmanager
def _batch_statistics(model, layers):
    """Makes each layer normalize by batch statistics (and update its averages) whatever ``training`` says.

    ``model.predict_on_batch`` runs a compiled function traced once with these
    calls; the momentum is a variable it reads, set before each batch. The
    model's predict function is dropped before and after, so neither this
    function nor a later ``predict`` runs a trace of the other kind.
    """
    momenta = [layer.momentum for layer in layers]
    momentum = keras.Variable(0.0, dtype="float32", trainable=False, name="kopt_batch_norm_momentum")
    for layer in layers:  # instance attributes, unseen by Keras' tracking: the class and other instances are untouched
        object.__setattr__(layer, "momentum", momentum)
        object.__setattr__(layer, "call", functools.partial(_training_call, layer))
    model.predict_function = None
    try:
        yield momentum.assign
    finally:
        model.predict_function = None
        for layer, value in zip(layers, momenta):
            object.__delattr__(layer, "call")
            object.__setattr__(layer, "momentum", value)


def _training_call(layer, inputs, training=None, mask=None):
    return type(layer).call(layer, inputs, training=True, mask=mask)


def _inputs(batch):
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return batch[0]
    return batch
