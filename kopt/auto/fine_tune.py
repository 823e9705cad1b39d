"""One compression step: prune to per-layer sparsities while fine-tuning, then strip.

Each layer's sparsity rises from where it is to its new level along a
``PolynomialDecay`` over the first 70% of the step's training (Zhu & Gupta's
gradual pruning), and the remaining 30% recovers accuracy at the final masks.
The model is fitted on arrays in a seeded order with a fresh Adam optimizer, so
the same step from the same model gives the same result, which is what makes a
resumed search end where an uninterrupted one does.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="d")])
>>> x, y = np.random.default_rng(0).normal(size=(64, 8)).astype("float32"), np.zeros(64, "int64")
>>> pruned = prune_and_fine_tune(model, {"d": 0.5}, (x, y), epochs=1, batch_size=16, verbose=0)
>>> float((pruned.get_layer("d").kernel.numpy() == 0).mean())
0.5
"""

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from kopt import pruning
from kopt.auto.allocate import Allocation
from kopt.auto.measure import layer_sparsities
from kopt.models import accuracy_metric
from kopt.models import classification_loss
from kopt.training.batch_norm import DEFAULT_BATCHES
from kopt.training.batch_norm import reestimate_batch_norm
from tflite_export.cloning import copy_model

__all__ = ["prune_and_fine_tune"]

_RAMP_FRACTION = 0.7
_UPDATES_PER_RAMP = 10


def prune_and_fine_tune(
    model: keras.Model,
    sparsities: dict,
    train_data: tuple,
    *,
    epochs: int = 2,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    batch_norm_batches: int = DEFAULT_BATCHES,
    criterion: str = "magnitude",
    seed: int = 0,
    loss: str | keras.losses.Loss | Callable[..., Any] | None = None,
    verbose: int = 0,
) -> keras.Model:
    """Prunes ``model`` to per-layer ``sparsities`` while fine-tuning; returns it stripped.

    Args:
        model: A plain Keras classifier; it is not changed (a pruned copy is made).
        sparsities: ``{layer name: sparsity}``; layers not named are not pruned.
            A layer already at or above its level keeps its zeros.
        train_data: ``(images, labels)`` arrays.
        epochs: Fine-tuning epochs.
        batch_size: Batch size.
        learning_rate: Adam learning rate.
        batch_norm_batches: Training batches over which BatchNormalization's
            statistics are re-estimated after fine-tuning
            (:func:`kopt.training.reestimate_batch_norm`); 0 keeps the moving averages.
        criterion: ``"magnitude"`` or ``"random"``.
        seed: Fixes the example order and any randomness of training.
        loss: A Keras loss; default sparse categorical cross-entropy, on logits
            unless the model ends with a softmax.
        verbose: Keras ``fit`` verbosity.

    Returns:
        A plain Keras model (pruning wrappers stripped, zeros baked in).
    """
    images, labels = train_data
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1. Received: epochs={epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1. Received: batch_size={batch_size!r}")
    total_steps = math.ceil(len(images) / batch_size) * epochs
    end_step = max(1, int(total_steps * _RAMP_FRACTION))
    frequency = max(1, end_step // _UPDATES_PER_RAMP)
    current = layer_sparsities(model)
    unknown = sorted(set(sparsities) - set(current))
    if unknown:
        raise ValueError(
            f"sparsities names layers that are not prunable layers of {model.name!r}: {unknown}. "
            f"Prunable: {sorted(current)}. Received: sparsities={sparsities!r}"
        )
    plan = Allocation(
        sparsities={name: max(float(sparsities.get(name, 0.0)), value) for name, value in current.items()},
        target_sparsity=0.0,
        overall_sparsity=0.0,
        predicted_drop=0.0,
        held_back=[],
    )
    layer_schedules = plan.schedules(end_step=end_step, frequency=frequency, initial=current)
    keras.utils.set_random_seed(seed)
    copy = copy_model(model)
    pruned = pruning.prune_low_magnitude(
        copy,
        pruning_schedule=pruning.ConstantSparsity(0.0, begin_step=0),
        layer_schedules=layer_schedules,
        criterion=criterion,
    )
    pruned.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=loss or classification_loss(model),
        metrics=[accuracy_metric(model)],
    )
    order = np.random.default_rng(seed).permutation(len(images))
    shuffled = images[order]
    pruned.fit(
        shuffled,
        labels[order],
        batch_size=batch_size,
        epochs=epochs,
        shuffle=True,
        callbacks=[pruning.UpdatePruningStep()],
        verbose=verbose,
    )
    stripped = pruning.strip_pruning(pruned)
    if batch_norm_batches:
        batches = (shuffled[start : start + batch_size] for start in range(0, len(shuffled), batch_size))
        reestimate_batch_norm(stripped, batches, batches=batch_norm_batches)
    return stripped
