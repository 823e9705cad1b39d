"""Where do the transferred starts' accuracy swings come from? The experiment behind benchmarks.transfer's settings.

Usage::

    python -m benchmarks.transfer_diagnosis          # about 10 minutes on 2 busy cores

Seed 0 only, and no test image: the first 10,000 training images of
``../shared/data/cifar10-15k.npz`` train, the last 2,000 validate. The narrow
source trains 1200 steps (Adam 1e-3, as in :mod:`benchmarks.transfer`). It
prints, for the source and for its widened and deepened copies (noise-free and
with the benchmark's noise), the validation accuracy with BatchNormalization's
moving statistics and with statistics re-estimated on 2,560 training images,
and how far the two sets of statistics are apart, on the original and on the
copied channels. Then each start trains 300 steps from a few learning-rate
schedules, validation accuracy every 25 steps read both ways, with the largest
drop between consecutive measurements after the first. BENCHMARKS.md quotes
its figures (``benchmarks.transfer_report.DIAGNOSIS``).
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.core.data import load_arrays  # noqa: E402
from benchmarks.transfer import DATA  # noqa: E402
from benchmarks.transfer_run import build_cnn  # noqa: E402
from benchmarks.transfer_run import net2net  # noqa: E402
from kopt.transfer import transfer_weights  # noqa: E402

SEED = 0
STEPS, EVERY, BATCH = 300, 25, 64
RUNS = (  # name, start, peak learning rate, schedule
    ("scratch const 1e-3", "scratch", 1e-3, "const"),
    ("net2net const 1e-3", "net2net", 1e-3, "const"),
    ("net2net warm+cos 3e-4", "net2net", 3e-4, "cos"),
    ("net2net warm+cos 1e-4", "net2net", 1e-4, "cos"),
    ("transfer const 1e-3", "transfer", 1e-3, "const"),
    ("transfer warm+cos 3e-4", "transfer", 3e-4, "cos"),
)


def bns(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def acc(model, data):
    _, _, x_val, y_val, _, _ = data
    return float(np.mean(np.argmax(model.predict(x_val, batch_size=500, verbose=0), -1) == y_val))


def recalibrated(model, data):
    """BN moving stats replaced by exact averages over 10 training batches: (accuracy, stats); then restored."""
    calibration = data[5]
    saved = [(bn.moving_mean.numpy(), bn.moving_variance.numpy(), bn.momentum) for bn in bns(model)]
    for i in range(10):
        for bn in bns(model):
            bn.momentum = i / (i + 1)
        model(calibration[i * 256 : (i + 1) * 256], training=True)
    stats = [(bn.moving_mean.numpy(), bn.moving_variance.numpy()) for bn in bns(model)]
    value = acc(model, data)
    for bn, (mean, var, momentum) in zip(bns(model), saved):
        bn.moving_mean.assign(mean)
        bn.moving_variance.assign(var)
        bn.momentum = momentum
    return value, stats


def schedule(peak, kind):
    if kind == "const":
        return peak
    return keras.optimizers.schedules.CosineDecay(0.0, 1200 - 60, warmup_target=peak, warmup_steps=60)


def largest_drop(values):
    """After the first measurement."""
    return max([0] + [a - b for a, b in zip(values[1:], values[2:])])


def fit(model, data, steps, lr, kind, every=EVERY, name=""):
    x_tr, y_tr, _, _, order, _ = data
    model.compile(
        optimizer=keras.optimizers.Adam(schedule(lr, kind)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    moving, recal = [acc(model, data)], [recalibrated(model, data)[0]]
    start = time.time()
    for s in range(0, steps, every):
        chunk = order[s * BATCH : (s + every) * BATCH]
        model.fit(x_tr[chunk], y_tr[chunk], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        if every < steps:
            moving.append(acc(model, data))
            recal.append(recalibrated(model, data)[0])
    if every < steps:
        print(
            f"{name:28s} moving: {' '.join(f'{100 * v:4.1f}' for v in moving)} | maxdrop {100 * largest_drop(moving):.1f}"
        )
        print(f"{'':28s} recal : {' '.join(f'{100 * v:4.1f}' for v in recal)} | maxdrop {100 * largest_drop(recal):.1f}"
              f"  ({time.time() - start:.0f}s)", flush=True)  # fmt: skip
    return model


def _relative(a, b):
    return np.abs(a - b) / (np.abs(b) + 1e-3)


def main():
    x, y, _, _ = load_arrays(DATA)
    rng = np.random.default_rng(SEED)
    per_epoch = 10000 // BATCH
    order = np.concatenate([rng.permutation(10000)[: per_epoch * BATCH] for _ in range(10)])
    calibration = x[:10000][np.random.default_rng(99).permutation(10000)[:2560]]
    data = (x[:10000], y[:10000], x[10000:], y[10000:], order, calibration)
    keras.utils.set_random_seed(SEED)
    source = fit(build_cnn((16, 32, 32, 32), name="source"), data, 1200, 1e-3, "const", every=1200)
    noisy = net2net(source, (32, 64, 64, 64), seed=SEED, noise_stddev=0.05)
    exact = net2net(source, (32, 64, 64, 64), seed=SEED, noise_stddev=0.0)
    for label, model in (("source", source), ("net2net exact", exact), ("net2net noise .05", noisy)):
        value, stats = recalibrated(model, data)
        print(f"{label}: val acc moving {100 * acc(model, data):.1f}, recalibrated {100 * value:.1f}")
        for bn, (mean, var) in zip(bns(model), stats):
            n = len(mean) // 2 if label != "source" else len(mean)  # the copied channels come after the originals
            moving_mean, moving_var = bn.moving_mean.numpy(), bn.moving_variance.numpy()
            new = (_relative(moving_mean[n:], mean[n:]).mean(), _relative(moving_var[n:], var[n:]).mean())
            print(f"  {bn.name}: |moving-recal| mean rel: orig mean {_relative(moving_mean[:n], mean[:n]).mean():.3f} "
                  f"var {_relative(moving_var[:n], var[:n]).mean():.3f}; new mean {new[0] if n < len(mean) else 0:.3f} "
                  f"var {new[1] if n < len(mean) else 0:.3f}", flush=True)  # fmt: skip
    for name, arm, lr, kind in RUNS:
        keras.utils.set_random_seed(SEED + 1)
        if arm == "scratch":
            model = build_cnn((32, 64, 64, 64), extra_conv=True, name="scratch")
        elif arm == "net2net":
            model = net2net(source, (32, 64, 64, 64), seed=SEED, noise_stddev=0.05)
        else:
            model = build_cnn((32, 64, 64, 64), extra_conv=True, name="transfer")
            transfer_weights(source, model)
        fit(model, data, STEPS, lr, kind, name=name)


if __name__ == "__main__":
    sys.exit(main())
