"""Training for the CIFAR-10 suite, the same under Keras 3 (kopt) and tf_keras (tfmot).

One recipe for every stage, as a practitioner trains a small CIFAR network: Adam
with a cosine decay to 0 over the stage, batch 64, each epoch's images randomly
flipped and shifted by up to 4 pixels (numpy, so both sides see the same images in
the same order for a seed). The tfmot worker imports this file as a sibling.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
>>> x = np.zeros((128, 32, 32, 3), "float32"); y = np.zeros(128, "int32")
>>> stats = train(keras, model, x, y, epochs=1, learning_rate=1e-3, seed=0)
>>> stats["steps"]
2
"""

import math
import time

import numpy as np

try:
    from benchmarks.core.training import Trainer
    from benchmarks.core.training import step_stats
except ModuleNotFoundError:  # The tfmot worker, which has benchmarks/ itself on sys.path.
    from core.training import Trainer
    from core.training import step_stats

__all__ = ["BATCH", "augment", "load_cifar", "prune_schedule", "target_of", "train"]

BATCH = 64


def augment(images, rng):
    """Random horizontal flips and shifts of up to 4 pixels (zero padding), per image."""
    flipped = np.where(rng.random(len(images))[:, None, None, None] < 0.5, images[:, :, ::-1], images)
    padded = np.pad(flipped, ((0, 0), (4, 4), (4, 4), (0, 0)))
    out = np.empty_like(images)
    for index, (dy, dx) in enumerate(rng.integers(0, 9, size=(len(images), 2))):
        out[index] = padded[index, dy : dy + images.shape[1], dx : dx + images.shape[2]]
    return out


def train(keras, model, x, y, *, epochs, learning_rate, seed, callbacks=(), compile_kwargs=None):
    """Compiles ``model`` with a fresh cosine-decayed Adam and trains it ``epochs`` epochs on augmented images.

    Args:
        keras: The Keras module in use (``keras`` or ``tf_keras``).
        model: The model (a ``Distiller`` too: pass ``compile_kwargs`` without a loss).
        x, y: Training images in [0, 1] and integer labels.
        epochs: Epochs; the learning rate decays to 0 over them.
        learning_rate: The starting rate.
        seed: Seeds the shuffling and the augmentation.
        callbacks: More callbacks (a pruning step, for example).
        compile_kwargs: Replaces the loss and metrics given to ``compile``.

    Returns:
        ``{"steps", "wall_s", **step_stats}``: the step timer's figures (every step is
        timed; read the median, which the first, tracing step does not move).
    """
    steps_per_epoch = len(x) // BATCH
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(epochs * steps_per_epoch, 1))
    extra = (
        compile_kwargs
        if compile_kwargs is not None
        else {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True), "metrics": ["accuracy"]}
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule), **extra)
    timer = Trainer(keras).StepTimer(skip_epochs=0)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(x))[: steps_per_epoch * BATCH]
        model.fit(
            augment(x[order], rng),
            y[order],
            batch_size=BATCH,
            epochs=1,
            shuffle=False,
            callbacks=[timer, *callbacks],
            verbose=0,
        )
    return {"steps": epochs * steps_per_epoch, "wall_s": time.perf_counter() - started, **step_stats(timer)}


def load_cifar(arrays, settings):
    """``core.data.load_arrays``' arrays with the test split cut to ``max_test_examples``."""
    x_train, y_train, x_test, y_test = arrays
    test = settings.get("max_test_examples") or len(x_test)
    return x_train, y_train, x_test[:test], y_test[:test]


def target_of(technique):
    """The share a ``prune_NN`` or ``structured_NN`` row removes: ``NN / 100``.

    >>> target_of("prune_80"), target_of("structured_30")
    (0.8, 0.3)
    """
    return int(technique.rsplit("_", 1)[1]) / 100


def prune_schedule(sparsity_api, settings, steps, sparsity):
    """``PolynomialDecay`` from 0 to ``sparsity``, reached after ``prune_end_fraction`` of ``steps``.

    ``sparsity_api`` is ``kopt.pruning`` or ``tfmot.sparsity.keras``: both sides use this rule.
    """
    end = max(1, math.ceil(steps * settings["prune_end_fraction"]) - 1)
    return sparsity_api.PolynomialDecay(
        0.0, sparsity, begin_step=0, end_step=end, frequency=settings["prune_frequency"]
    )
