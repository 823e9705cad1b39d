"""First-order Taylor importance of output channels, for structured pruning.

Removing output channel ``j`` of a layer sets its weights ``w`` (kernel slice and
bias) to zero. To first order the loss then changes by ``-sum_i g_i w_i`` over the
channel's weights, with ``g`` the gradient of the loss; Molchanov et al. (2019,
"Importance Estimation for Neural Network Pruning") score a channel by the square
of that change, averaged over batches::

    importance_j = mean over batches of (sum_{i in channel j} g_i * w_i) ** 2

Unlike the L1 norm it looks at the data: a large filter the loss does not use
scores low. Pass the result to :func:`kopt.pruning.prune_channels` as
``importance=``.

Gradients come from ``tf.GradientTape``, so this needs the TensorFlow backend.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, name="hidden"),
...                           keras.layers.Dense(3, name="head")])
>>> x, y = np.ones((8, 4), "float32"), np.zeros(8, "int32")
>>> scores = taylor_importance(model, (x, y))
>>> sorted(scores), scores["hidden"].shape
(['head', 'hidden'], (6,))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

import keras
import numpy as np

from kopt.pruning.structured_layers import GATES
from kopt.pruning.structured_layers import PRODUCERS
from kopt.pruning.structured_layers import TRANSPOSED
from kopt.pruning.structured_layers import fold_gates
from kopt.pruning.structured_layers import output_columns
from kopt.pruning.structured_layers import output_kernel
from kopt.pruning.structured_layers import output_width
from kopt.pruning.structured_layers import unit_layers
from kopt.utils.layer_kinds import recurrent_directions
from tflite_export.layers import leaf_layers

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["taylor_importance"]

_SCORED = PRODUCERS + TRANSPOSED + tuple(GATES)  # every layer structured pruning removes output channels of


def taylor_importance(
    model: keras.Model,
    data: tuple[np.ndarray, np.ndarray] | tf.data.Dataset,
    *,
    loss: Callable[[Any, Any], Any] | None = None,
    batch_size: int = 128,
    max_batches: int | None = 16,
) -> dict[str, np.ndarray]:
    """Scores every output channel of the model's Conv/Dense layers by first-order Taylor.

    Args:
        model: A built ``keras.Model`` whose Dense, Conv1D/2D/3D,
            SeparableConv1D/2D, LSTM/GRU/SimpleRNN and Bidirectional (around
            one of those) layers are scored (the layers
            :func:`kopt.pruning.channel_plan` can prune).
        data: ``(images, labels)`` arrays, or a ``tf.data.Dataset`` of such
            batches.
        loss: A Keras loss; default :func:`kopt.models.classification_loss`
            (sparse categorical cross-entropy, or binary for a one-score model),
            on logits unless the model ends with a softmax or sigmoid.
        batch_size: Batch size when ``data`` is arrays.
        max_batches: Use at most this many batches; ``None`` uses them all.

    Returns:
        ``{layer name: float64 array of one score per output channel}``.

    Raises:
        ValueError: For bad ``batch_size``/``max_batches``, or a model with no
            layer to score.
    """
    import tensorflow as tf  # Gradients of a Keras model: a TensorFlow feature here.

    from kopt.models import classification_loss

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1. Received: batch_size={batch_size!r}")
    if max_batches is not None and (
        isinstance(max_batches, bool) or not isinstance(max_batches, int) or max_batches < 1
    ):
        raise ValueError(f"max_batches must be an integer >= 1 or None. Received: max_batches={max_batches!r}")
    layers = [layer for layer in leaf_layers(model) if _scored(layer) and layer.built]
    if not layers:
        raise ValueError(f"model {model.name!r} has no Dense or Conv layer to score. Received: model={model.name!r}")
    loss = loss or classification_loss(model)
    weights = [_channel_weights(layer) for layer in layers]
    variables = [variable for group in weights for variable, _ in group]
    totals = [np.zeros(output_width(layer)) for layer in layers]
    count = 0
    for images, labels in _batches(data, batch_size):
        if max_batches is not None and count >= max_batches:
            break
        with tf.GradientTape() as tape:
            value = loss(labels, model(images, training=False))
        gradients = tape.gradient(value, [variable.value for variable in variables])
        position = 0
        for index, group in enumerate(weights):
            change = np.zeros_like(totals[index])
            for variable, owner in group:
                gradient = np.asarray(gradients[position]) if gradients[position] is not None else 0.0
                product = gradient * keras.ops.convert_to_numpy(variable.value)
                if variable is output_kernel(owner):
                    product = output_columns(owner, product)  # a transposed kernel's outputs are on axis -2
                change += fold_gates(product.reshape(-1, product.shape[-1]).sum(axis=0), owner)
                position += 1
            totals[index] += change**2
        count += 1
    if count == 0:
        raise ValueError("data holds no batch to compute gradients on. Received: an empty data")
    return {layer.name: total / count for layer, total in zip(layers, totals)}


def _scored(layer):
    """Dense, convolutions, recurrent layers, and a Bidirectional around an LSTM, GRU or SimpleRNN."""
    if isinstance(layer, keras.layers.Bidirectional):
        return bool(recurrent_directions(layer))
    return type(layer).__name__ in _SCORED


def _channel_weights(layer):
    """``(weight, its layer)`` for each weight whose last axis runs over the output columns: every
    gate's for a recurrent layer, both directions' for a Bidirectional, whose unit ``j`` is one
    channel of both (its weights' products are summed before squaring, as for any channel)."""
    found = []
    for unit_layer in unit_layers(layer):
        cell = getattr(unit_layer, "cell", unit_layer)
        extra = [getattr(cell, name, None) for name in ("recurrent_kernel", "bias")]
        found += [(variable, unit_layer) for variable in [output_kernel(unit_layer), *extra] if variable is not None]
    return found


def _batches(data, batch_size):
    if isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = (np.asarray(part) for part in data)
        for start in range(0, len(images), batch_size):
            yield images[start : start + batch_size], labels[start : start + batch_size]
        return
    yield from data
