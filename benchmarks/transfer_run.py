"""The knowledge-transfer benchmark's runs: one trained source, three ways to start the target, one curve each.

Per seed, a narrow CIFAR-10 CNN (the *source*) trains to convergence for
``source_steps`` steps (Adam from ``learning_rate``, decayed to 0 along a
cosine). The *target* architecture is the source twice as wide on every layer,
with one more 3x3 convolution (``conv4``) after the last block. It then trains
from three starts, on the same batches in the same order, each with the
schedule a practitioner would pick for it (:func:`learning_rate_for`):

* ``scratch``: its own random initialization, trained like the source for
  ``steps`` steps (Adam from ``learning_rate``, a cosine to 0 at ``steps``);
* ``net2net``: the source widened layer by layer (:func:`kopt.transfer.widen`,
  a little noise on the copies so they can drift apart; exact copies would stay
  identical forever) and deepened by an identity ``conv4``
  (:func:`kopt.transfer.deepen`);
* ``transfer``: the scratch initialization with every source weight that fits
  copied in by :func:`kopt.transfer.transfer_weights` (the overlap of each
  wider layer; ``conv4`` keeps its random weights).

The two warm starts are fine-tuned, not trained from scratch, and get a budget
of ``warm_steps`` steps (half of ``steps`` by default: the issue's question is
whether half the steps suffice): a fresh Adam whose rate warms up linearly
from 0 to its own peak (``net2net_learning_rate``, ``transfer_learning_rate``;
:func:`finetune_rate`) over ``warmup_steps`` steps, then decays
along a cosine to 0 at ``warm_steps``. At the full from-scratch rate the
trained weights were knocked about: on a validation split the Net2Net start
first lost 3.5 points (BENCHMARKS.md has the diagnosis).

Every ``eval_every`` steps (and at step 0) the test accuracy is measured with
BatchNormalization's statistics re-estimated on the current weights
(:func:`recalibrated_accuracy`: the exact mean of the batch statistics of a
fixed set of training images, "precise BN"), identically for every start. The
moving averages that Keras keeps (momentum 0.99, about the last 100 steps) lag
weights that move, and read on their own they made test accuracy swing by up to
22 points between measurements; the final accuracy with the moving averages
(the model as it would be saved) is recorded beside it. Before training, the
noise-free widened and deepened model's logits are compared with the source's
on the test split (Net2Net keeps the function).

The figure of merit, the same for every start (:func:`steps_to_reach`): the
curve is smoothed by a trailing mean over ``smooth`` checkpoints (fewer at the
start); the scratch model's final accuracy is its smoothed value at ``steps``
(the mean of its last ``smooth`` checkpoints); a start reaches it at the first
checkpoint from which its smoothed curve stays at or above that value up to its
own last step.
"""

import time

import keras
import numpy as np

from kopt.transfer import deepen
from kopt.transfer import transfer_weights
from kopt.transfer import widen

__all__ = [
    "ARMS",
    "WARM_STARTS",
    "WIDENED_LAYERS",
    "build_cnn",
    "build_start",
    "finetune_rate",
    "learning_rate_for",
    "net2net",
    "recalibrated_accuracy",
    "run_seed",
    "smoothed",
    "steps_for",
    "steps_to_reach",
    "train_curve",
    "within",
]

ARMS = ("scratch", "net2net", "transfer")
WARM_STARTS = ARMS[1:]  # the starts fine-tuned from the source, each at its own peak rate
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


def steps_for(arm, settings):
    """How many steps each start trains: ``source_steps``, ``steps`` (scratch) or ``warm_steps`` (the warm starts)."""
    return {"source": settings.source_steps, "scratch": settings.steps}.get(arm, settings.warm_steps)


def learning_rate_for(arm, settings):
    """The Adam learning rate schedule each start trains with (see the module docstring).

    The source and the scratch model decay ``learning_rate`` along a cosine to 0
    at their last step; the warm starts warm up linearly over ``warmup_steps``
    to their :func:`finetune_rate`, then decay along a cosine to 0 at
    ``warm_steps``.
    """
    steps = steps_for(arm, settings)
    if arm in ("source", "scratch"):
        return keras.optimizers.schedules.CosineDecay(settings.learning_rate, steps)
    warmup = min(settings.warmup_steps, steps - 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0, steps - warmup, warmup_target=finetune_rate(arm, settings), warmup_steps=warmup
    )


def finetune_rate(arm, settings):
    """The peak rate a warm start (``"net2net"`` or ``"transfer"``) is fine-tuned at.

    Raises:
        ValueError: For another arm, naming it.
    """
    if arm not in WARM_STARTS:
        raise ValueError(f"arm must be 'net2net' or 'transfer', the warm starts. Received: arm={arm!r}")
    return getattr(settings, f"{arm}_learning_rate")


def accuracy(model, x, y, batch_size=500):
    """Test accuracy from the logits, with the model's BatchNormalization statistics as they are."""
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def recalibrated_accuracy(model, x, y, calibration, batch_size=256):
    """Test accuracy with every BatchNormalization's statistics re-estimated on ``calibration`` images.

    Each BatchNormalization's moving mean and variance become the exact mean
    (weighted by batch size) of its batch statistics over ``calibration`` in
    batches of ``batch_size``, with the current weights; the accuracy is
    measured, and the moving statistics are put back as they were, so training
    goes on unchanged.
    """
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [(layer.momentum, layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]
    seen = 0
    for start in range(0, len(calibration), batch_size):
        batch = calibration[start : start + batch_size]
        for layer in layers:
            layer.momentum = seen / (seen + len(batch))
        model(batch, training=True)
        seen += len(batch)
    try:
        return accuracy(model, x, y)
    finally:
        for layer, (momentum, mean, variance) in zip(layers, saved):
            layer.momentum = momentum
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)


def train_curve(model, data, *, steps, eval_every, batch_size, learning_rate, order_seed, calibration):
    """Trains ``model`` for ``steps`` Adam steps; returns ``[[step, test accuracy], ...]`` from step 0.

    The accuracies are :func:`recalibrated_accuracy` on ``calibration``. The
    batches come from one shuffle of the training data per epoch, drawn by
    ``order_seed``, so every start sees the same batches in the same order.
    ``learning_rate`` is a float or a Keras schedule of the step.
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
    curve = [[0, recalibrated_accuracy(model, x_test, y_test, calibration)]]
    for start in range(0, steps, eval_every):
        chunk = order[start * batch_size : min(start + eval_every, steps) * batch_size]
        model.fit(x_train[chunk], y_train[chunk], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        curve.append([min(start + eval_every, steps), recalibrated_accuracy(model, x_test, y_test, calibration)])
    return curve


def smoothed(curve, window):
    """The trailing mean over ``window`` checkpoints (fewer at the start), as ``[[step, mean], ...]``.

    >>> smoothed([[0, 0.1], [100, 0.5], [200, 0.6], [300, 0.4]], 3)
    [[0, 0.1], [100, 0.3], [200, 0.4], [300, 0.5]]
    """
    values = [value for _, value in curve]
    return [
        [step, round(sum(values[max(0, i + 1 - window) : i + 1]) / (i + 1 - max(0, i + 1 - window)), 9)]
        for i, (step, _) in enumerate(curve)
    ]


def steps_to_reach(curve, target, window):
    """The first checkpoint from which the :func:`smoothed` curve stays at or above ``target``, or ``None``.

    >>> steps_to_reach([[0, 0.1], [100, 0.6], [200, 0.6], [300, 0.3], [400, 0.7]], 0.5, 1)
    400
    >>> steps_to_reach([[0, 0.1], [100, 0.6], [200, 0.6], [300, 0.6]], 0.5, 2)
    200
    >>> steps_to_reach([[0, 0.1], [100, 0.5]], 0.55, 1) is None
    True
    """
    reached = None
    for step, value in smoothed(curve, window):
        if value < target:
            reached = None
        elif reached is None:
            reached = step
    return reached


def within(reached, budget):
    """Whether a start reached the scratch final (:func:`steps_to_reach`) by step ``budget``.

    >>> within(0, 600), within(600, 600), within(700, 600), within(None, 600)
    (True, True, False, False)
    """
    return reached is not None and reached <= budget


def build_start(arm, source, settings, seed):
    """The target model that ``arm`` starts from, and the ``transfer_weights`` report (None but for transfer).

    ``scratch`` and ``transfer`` draw the same random initialization (``seed +
    1``), so where nothing of the source fits, the transfer start equals scratch.
    """
    if arm == "net2net":
        return net2net(source, settings.wide, seed=seed, noise_stddev=settings.widen_noise), None
    keras.utils.set_random_seed(seed + 1)
    model = build_cnn(settings.wide, extra_conv=True, name=arm)
    return model, (transfer_weights(source, model) if arm == "transfer" else None)


def run_seed(settings, seed, data):
    """One seed's source, the exactness check and the three curves, as a JSON-ready dict."""
    x_train, _, x_test, y_test = data
    calibration = x_train[np.random.default_rng(seed).permutation(len(x_train))[: settings.calibration_examples]]
    keras.utils.set_random_seed(seed)
    source = build_cnn(settings.narrow, name="source")
    common = dict(
        eval_every=settings.eval_every, batch_size=settings.batch_size, order_seed=seed, calibration=calibration
    )
    started = time.perf_counter()
    source_curve = train_curve(
        source, data, steps=settings.source_steps, learning_rate=learning_rate_for("source", settings),
        **{**common, "eval_every": min(settings.source_steps, max(settings.eval_every, settings.source_steps // 4))},
    )  # fmt: skip
    row = {"seed": seed, "source_curve": source_curve, "source_seconds": round(time.perf_counter() - started, 1)}
    reference = source.predict(x_test, batch_size=500, verbose=0)
    exact = net2net(source, settings.wide, seed=seed, noise_stddev=0.0)
    row["net2net_exact_max_abs_diff"] = float(
        np.max(np.abs(exact.predict(x_test, batch_size=500, verbose=0) - reference))
    )
    starts = {arm: build_start(arm, source, settings, seed) for arm in ARMS}
    report = starts["transfer"][1]
    starts = {arm: model for arm, (model, _) in starts.items()}
    row["transfer_report"] = {
        "counts": report.to_dict()["counts"],
        "values_transferred": report.values_transferred,
        "values_total": report.values_total,
        "skipped_layers": report.skipped_layers(),
    }
    for arm in ARMS:
        started = time.perf_counter()
        row[f"{arm}_curve"] = train_curve(
            starts[arm], data, steps=steps_for(arm, settings), learning_rate=learning_rate_for(arm, settings), **common
        )
        row[f"{arm}_seconds"] = round(time.perf_counter() - started, 1)
        row[f"{arm}_final_moving_stats"] = accuracy(starts[arm], x_test, data[3])
    row["scratch_final"] = smoothed(row["scratch_curve"], settings.smooth)[-1][1]
    for arm in ARMS:
        row[f"{arm}_steps_to_scratch_final"] = steps_to_reach(
            row[f"{arm}_curve"], row["scratch_final"], settings.smooth
        )
    return row
