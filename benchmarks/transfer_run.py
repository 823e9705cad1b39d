"""The knowledge-transfer benchmark's runs: one trained source, three ways to start the target, one curve each.

Per seed, a narrow CIFAR-10 CNN (the *source*) trains for ``source_steps``
steps. The *target* architecture is the source twice as wide on every layer,
with one more 3x3 convolution (``conv4``) after the last block. It then trains
for ``steps`` steps from three starts, with the same fresh Adam, the same batches
in the same order, and test accuracy measured every ``eval_every`` steps:

* ``scratch``: its own random initialization;
* ``net2net``: the source widened layer by layer (:func:`kopt.transfer.widen`,
  a little noise on the copies so they can drift apart; exact copies would stay
  identical forever) and deepened by an identity ``conv4``
  (:func:`kopt.transfer.deepen`);
* ``transfer``: the scratch initialization with every source weight that fits
  copied in by :func:`kopt.transfer.transfer_weights` (the overlap of each
  wider layer; ``conv4`` keeps its random weights).

Before training, the noise-free widened and deepened model's logits are
compared with the source's on the test split (Net2Net keeps the function).
"""

import time

import keras
import numpy as np

from kopt.transfer import deepen
from kopt.transfer import transfer_weights
from kopt.transfer import widen

__all__ = ["ARMS", "WIDENED_LAYERS", "build_cnn", "net2net", "run_seed", "steps_to_reach", "train_curve"]

ARMS = ("scratch", "net2net", "transfer")
WIDENED_LAYERS = ("conv1", "conv2", "conv3", "dense")


def build_cnn(widths, *, extra_conv=False, num_classes=10, name="cnn"):
    """Three conv -> BatchNorm -> ReLU blocks (two max-pooled), [conv4,] global pooling, a Dense, the logits."""
    inputs = keras.Input((32, 32, 3), name="image")
    x = inputs
    for index, filters in enumerate(widths[:3], start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        if index < 3:
            x = keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
    if extra_conv:
        x = keras.layers.Conv2D(widths[2], 3, padding="same", activation="relu", name="conv4")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(widths[3], activation="relu", name="dense")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def net2net(source, wide, *, seed, noise_stddev):
    """The source widened to ``wide`` on :data:`WIDENED_LAYERS` and deepened by ``conv4`` after ``relu3``."""
    model = source
    for layer_name, units in zip(WIDENED_LAYERS, wide):
        model = widen(model, layer_name, units, seed=seed, noise_stddev=noise_stddev)
    return deepen(model, "relu3", name="conv4")


def accuracy(model, x, y, batch_size=500):
    """Test accuracy from the logits."""
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def train_curve(model, data, *, steps, eval_every, batch_size, learning_rate, order_seed):
    """Trains ``model`` for ``steps`` Adam steps; returns ``[[step, test accuracy], ...]`` from step 0.

    The batches come from one shuffle of the training data per epoch, drawn by
    ``order_seed``, so every start sees the same batches in the same order.
    """
    x_train, y_train, x_test, y_test = data
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(order_seed)
    per_epoch = len(x_train) // batch_size
    order = np.concatenate(
        [rng.permutation(len(x_train))[: per_epoch * batch_size] for _ in range(-(-steps // per_epoch))]
    )
    curve = [[0, accuracy(model, x_test, y_test)]]
    for start in range(0, steps, eval_every):
        chunk = order[start * batch_size : min(start + eval_every, steps) * batch_size]
        model.fit(x_train[chunk], y_train[chunk], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        curve.append([min(start + eval_every, steps), accuracy(model, x_test, y_test)])
    return curve


def steps_to_reach(curve, target):
    """The first measured step whose accuracy is at least ``target``, or ``None``.

    >>> steps_to_reach([[0, 0.1], [100, 0.5], [200, 0.6]], 0.55)
    200
    >>> steps_to_reach([[0, 0.1], [100, 0.5]], 0.55) is None
    True
    """
    return next((step for step, value in curve if value >= target), None)


def run_seed(settings, seed, data):
    """One seed's source, the exactness check and the three curves, as a JSON-ready dict."""
    x_test = data[2]
    keras.utils.set_random_seed(seed)
    source = build_cnn(settings.narrow, name="source")
    common = dict(
        eval_every=settings.eval_every,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        order_seed=seed,
    )
    started = time.perf_counter()
    source_curve = train_curve(source, data, steps=settings.source_steps, **common)
    row = {"seed": seed, "source_curve": source_curve, "source_seconds": round(time.perf_counter() - started, 1)}
    reference = source.predict(x_test, batch_size=500, verbose=0)
    exact = net2net(source, settings.wide, seed=seed, noise_stddev=0.0)
    row["net2net_exact_max_abs_diff"] = float(
        np.max(np.abs(exact.predict(x_test, batch_size=500, verbose=0) - reference))
    )
    starts = {}
    keras.utils.set_random_seed(seed + 1)
    starts["scratch"] = build_cnn(settings.wide, extra_conv=True, name="scratch")
    starts["net2net"] = net2net(source, settings.wide, seed=seed, noise_stddev=settings.widen_noise)
    keras.utils.set_random_seed(seed + 1)  # the same initialization as scratch where nothing fits
    starts["transfer"] = build_cnn(settings.wide, extra_conv=True, name="transfer")
    report = transfer_weights(source, starts["transfer"])
    row["transfer_report"] = {
        "counts": report.to_dict()["counts"],
        "values_transferred": report.values_transferred,
        "values_total": report.values_total,
        "skipped_layers": report.skipped_layers(),
    }
    for arm in ARMS:
        started = time.perf_counter()
        row[f"{arm}_curve"] = train_curve(starts[arm], data, steps=settings.steps, **common)
        row[f"{arm}_seconds"] = round(time.perf_counter() - started, 1)
    target = row["scratch_curve"][-1][1]
    for arm in ("net2net", "transfer"):
        row[f"{arm}_steps_to_scratch_final"] = steps_to_reach(row[f"{arm}_curve"], target)
    return row
