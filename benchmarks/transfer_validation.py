"""The warm starts' fine-tuning rate for benchmarks.transfer, chosen on a validation split, never the test set.

Usage::

    python -m benchmarks.transfer_validation      # seed 0, about 18 minutes on 2 busy cores

The protocol of :mod:`benchmarks.transfer` (a converged source; the scratch
target for ``steps`` steps; each warm start for ``warm_steps``), with the
first 10,000 training images of ``../shared/data/cifar10-15k.npz`` to train on
and the last 2,000 to measure; no test image is read. The source and the
scratch model train once; each warm start then trains once per peak rate of
``--rates``. The figure is the one the benchmark reads: the trailing mean of
the last ``smooth`` measurements (precise BN). The rate with the highest
figure is each start's choice; ties go to the lower rate. Results:
``benchmarks/results/transfer_validation.json``.
"""

import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import machine  # noqa: E402
from benchmarks import standalone  # noqa: E402
from benchmarks.core.data import load_arrays  # noqa: E402
from benchmarks.transfer import DATA  # noqa: E402
from benchmarks.transfer import TransferSettings  # noqa: E402
from benchmarks.transfer_report import validation_report as report  # noqa: E402
from benchmarks.transfer_run import WARM_STARTS  # noqa: E402
from benchmarks.transfer_run import build_cnn  # noqa: E402
from benchmarks.transfer_run import build_start  # noqa: E402
from benchmarks.transfer_run import learning_rate_for  # noqa: E402
from benchmarks.transfer_run import smoothed  # noqa: E402
from benchmarks.transfer_run import steps_for  # noqa: E402
from benchmarks.transfer_run import train_curve  # noqa: E402

__all__ = ["choose", "report", "sweep", "validation_split"]

VALIDATION = 2000


def validation_split(x_train, y_train, validation=VALIDATION):
    """``(x_fit, y_fit, x_val, y_val)``: the training images but the last ``validation``, and those.

    >>> x, y = np.arange(10), np.arange(10)
    >>> [part.tolist() for part in validation_split(x, y, 3)]
    [[0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5, 6], [7, 8, 9], [7, 8, 9]]
    """
    if not 0 < validation < len(x_train):
        raise ValueError(f"validation must be between 1 and {len(x_train) - 1}. Received: validation={validation}")
    return x_train[:-validation], y_train[:-validation], x_train[-validation:], y_train[-validation:]


def choose(figures):
    """The rate with the highest figure, the lower rate on a tie.

    >>> choose({"0.001": 0.6, "0.0003": 0.61, "0.0001": 0.61})
    0.0001
    """
    best = max(figures.values())
    return min(float(rate) for rate, value in figures.items() if value == best)


def sweep(settings, rates, seed, data):
    """Trains the source, the scratch model and every warm start at every rate; the curves and choices."""
    x_fit, _, _, _ = data
    calibration = x_fit[np.random.default_rng(seed).permutation(len(x_fit))[: settings.calibration_examples]]
    common = dict(
        eval_every=settings.eval_every, batch_size=settings.batch_size, order_seed=seed, calibration=calibration
    )
    keras.utils.set_random_seed(seed)
    source = build_cnn(settings.narrow, name="source")
    curves = {
        "source": train_curve(
            source, data, steps=settings.source_steps, learning_rate=learning_rate_for("source", settings),
            **{**common, "eval_every": settings.source_steps},
        )
    }  # fmt: skip
    logging.info("source: %.3f", curves["source"][-1][1])
    scratch, _ = build_start("scratch", source, settings, seed)
    curves["scratch"] = train_curve(
        scratch, data, steps=settings.steps, learning_rate=learning_rate_for("scratch", settings), **common
    )
    figures = {"scratch": smoothed(curves["scratch"], settings.smooth)[-1][1]}
    logging.info("scratch: %.3f", figures["scratch"])
    for arm in WARM_STARTS:
        figures[arm] = {}
        for rate in rates:
            model, _ = build_start(arm, source, settings, seed)
            at_rate = dataclasses.replace(settings, **{f"{arm}_learning_rate": rate})
            curves[f"{arm}@{rate}"] = train_curve(
                model, data, steps=steps_for(arm, at_rate), learning_rate=learning_rate_for(arm, at_rate), **common
            )
            figures[arm][str(rate)] = smoothed(curves[f"{arm}@{rate}"], settings.smooth)[-1][1]
            logging.info("%s at %g: %.3f", arm, rate, figures[arm][str(rate)])
    return {
        "seed": seed,
        "curves": curves,
        "figures": figures,
        "chosen": {arm: choose(figures[arm]) for arm in WARM_STARTS},
    }


def main(argv):
    del argv
    settings = TransferSettings.quick() if flags.FLAGS.quick else TransferSettings.full()
    x_train, y_train, _, _ = load_arrays(DATA, settings.max_train_examples)
    data = validation_split(x_train, y_train, 64 if flags.FLAGS.quick else VALIDATION)
    rates = tuple(float(rate) for rate in flags.FLAGS.rates)
    start_machine = machine.describe_machine()
    result = sweep(settings, rates, flags.FLAGS.seed, data)
    document = {
        "settings": settings.as_dict(),
        "rates": rates,
        "data": f"{len(data[0]):,} training images to train on, the last {len(data[2]):,} to measure",
        "result": result,
    }
    document = standalone.stamp(document, "benchmarks.transfer_validation", start_machine)
    output = flags.FLAGS.output
    if flags.FLAGS.quick and not flags.FLAGS["output"].present:
        output = os.path.splitext(output)[0] + "_quick.json"  # a smoke run never replaces the real choice
    standalone.publish(document, output, report=report)


if __name__ == "__main__":
    flags.DEFINE_bool("quick", False, "A smoke run of seconds; its figures mean nothing.")
    flags.DEFINE_integer("seed", 0, "The one seed the choice is made on.")
    flags.DEFINE_list("rates", ["0.0001", "0.0003", "0.001", "0.003", "0.01"], "Peak fine-tuning rates to compare.")
    flags.DEFINE_string(
        "output",
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "results",
                     "transfer_validation.json"),
        "JSON results file.",
    )  # fmt: skip
    app.run(main)
