"""Does starting from a trained model beat training from scratch? Net2Net and transfer_weights on CIFAR-10 (issue 26).

Usage::

    python -m benchmarks.transfer                 # the figures of BENCHMARKS.md (3 seeds)
    python -m benchmarks.transfer --quick         # a smoke run of seconds; its figures mean nothing

Real CIFAR-10 images (``../shared/data/cifar10-15k.npz``: 12,000 training and
3,000 test images, pixels scaled to [0, 1]; nothing downloads). Per seed a
narrow CNN is trained to convergence, then a target twice as wide with one more
convolution trains from scratch for ``steps`` steps, and from the Net2Net-grown
source and from the source's weights copied in by ``transfer_weights`` for half
as many (:mod:`benchmarks.transfer_run` says exactly how). Each start trains as
a practitioner would train it for its budget: the source and the scratch model
with Adam from 1e-3 decayed to 0 along a cosine, the two warm starts with a
fine-tuning schedule (Adam warmed up over 30 steps to 1e-3, then a cosine to 0
at their last step; the peak chosen on seed 0 of a validation split,
:mod:`benchmarks.transfer_validation`, never on the test set).

Test accuracy is measured every 100 steps with BatchNormalization's statistics
re-estimated on 2,560 training images, the same way for every start. The
figure of merit, also the same for every start: the *scratch final* is the mean
of the scratch model's last 3 measurements; a start *reaches* it at the first
measurement from which the trailing mean of 3 measurements (fewer before the
third) stays at or above the scratch final up to the last step. The issue asks
for at most half the steps, on every seed. The source's own training steps are
stated beside it: the transferred starts need that trained model first.
Results: ``benchmarks/results/transfer.json``, ``transfer.png`` and the
``transfer`` section of BENCHMARKS.md.
"""

import dataclasses
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import machine  # noqa: E402
from benchmarks import standalone  # noqa: E402
from benchmarks.core.data import load_arrays  # noqa: E402
from benchmarks.core.settings import SuiteSettings  # noqa: E402
from benchmarks.core.stats import spread  # noqa: E402
from benchmarks.transfer_report import plot  # noqa: E402
from benchmarks.transfer_report import report  # noqa: E402
from benchmarks.transfer_report import validation_report  # noqa: E402
from benchmarks.transfer_run import ARMS  # noqa: E402
from benchmarks.transfer_run import finetune_rate  # noqa: E402
from benchmarks.transfer_run import run_seed  # noqa: E402
from benchmarks.transfer_run import smoothed  # noqa: E402
from benchmarks.transfer_run import within  # noqa: E402

__all__ = ["TransferSettings", "plot", "report", "run", "summarize", "validation_paragraph"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(_ROOT, "..", "shared", "data", "cifar10-15k.npz")


@dataclasses.dataclass(frozen=True)
class TransferSettings(SuiteSettings):
    """The benchmark's settings; :meth:`quick` gives a smoke run's."""

    seeds: tuple = (0, 1, 2)
    narrow: tuple = (16, 32, 32, 32)  # conv1, conv2, conv3, dense of the source
    wide: tuple = (32, 64, 64, 64)  # the same layers of the target
    source_steps: int = 3600  # the source trains to convergence: Net2Net grows a trained model
    steps: int = 1200  # the scratch model's budget
    warm_steps: int = 600  # the warm starts' budget: half the scratch model's, the issue's question
    eval_every: int = 100
    batch_size: int = 64
    learning_rate: float = 1e-3  # Adam, cosine-decayed to 0: the source and the scratch model
    # Each warm start's peak, chosen among 1e-4 ... 1e-2 on seed 0's validation split by
    # benchmarks.transfer_validation (BENCHMARKS.md quotes its figures).
    net2net_learning_rate: float = 3e-3
    transfer_learning_rate: float = 1e-3
    warmup_steps: int = 30  # the warm starts' linear warm-up, then a cosine to 0 at `warm_steps`
    smooth: int = 3  # checkpoints in the trailing mean that steps-to-reach and the finals read
    calibration_examples: int = 2560  # training images that re-estimate BatchNorm's statistics per measurement
    widen_noise: float = 0.05
    max_train_examples: int | None = None
    max_test_examples: int | None = None

    @classmethod
    def quick(cls):
        return cls(
            seeds=(0,), source_steps=6, steps=6, warm_steps=3, eval_every=3, batch_size=16, max_train_examples=256,
            max_test_examples=200, warmup_steps=2, calibration_examples=64,
        )  # fmt: skip

    def validate(self):
        self.require_at_least_one(
            "source_steps", "steps", "warm_steps", "eval_every", "batch_size", "smooth", "calibration_examples"
        )
        if self.warm_steps > self.steps:
            raise ValueError(
                f"warm_steps must be at most steps (the scratch budget). Received: warm_steps={self.warm_steps}, "
                f"steps={self.steps}"
            )
        if not self.seeds:
            raise ValueError(f"seeds must name at least one seed. Received: seeds={self.seeds}")
        return self


def run(settings, data_path=DATA):
    """Every seed's runs and the summary, as the JSON document (without command and machine)."""
    settings.validate()
    x_train, y_train, x_test, y_test = load_arrays(data_path, settings.max_train_examples)
    if settings.max_test_examples:
        x_test, y_test = x_test[: settings.max_test_examples], y_test[: settings.max_test_examples]
    data = (x_train, y_train, x_test, y_test)
    rows = []
    for seed in settings.seeds:
        rows.append(run_seed(settings, seed, data))
        logging.info("seed %d: %s", seed, {key: value for key, value in rows[-1].items() if "curve" not in key})
    return {
        "settings": settings.as_dict(),
        "data": f"{len(x_train):,} training and {len(x_test):,} test CIFAR-10 images",
        "steps_per_epoch": len(x_train) // settings.batch_size,
        "rows": rows,
        "summary": summarize(rows, settings.steps, settings.smooth),
    }


def summarize(rows, steps, window):
    """Mean and spread of the (smoothed) final accuracies and steps, and whether every seed meets the must-hold."""
    summary = {}
    for arm in ARMS:
        summary[f"{arm}_final"] = spread([smoothed(row[f"{arm}_curve"], window)[-1][1] for row in rows])
        summary[f"{arm}_final_moving_stats"] = spread([row[f"{arm}_final_moving_stats"] for row in rows])
        reached = [row[f"{arm}_steps_to_scratch_final"] for row in rows]
        summary[f"{arm}_steps"] = reached
        summary[f"{arm}_at_most_half"] = all(within(value, steps / 2) for value in reached)
    summary["net2net_exact_max_abs_diff"] = max(row["net2net_exact_max_abs_diff"] for row in rows)
    for arm in ("source", "scratch"):
        seconds = [100 * row[f"{arm}_seconds"] / row[f"{arm}_curve"][-1][0] for row in rows]
        summary[f"{arm}_seconds_per_100_steps"] = sum(seconds) / len(seconds)
    return summary


def validation_paragraph(path, settings):
    """The validation sweep's paragraph (:mod:`benchmarks.transfer_validation`), checked against ``settings``.

    Raises:
        app.UsageError: If the file is missing, or the rate it chose for a warm
            start is not the one ``settings`` trains with (the section would
            claim a choice that was not made).
    """
    if not os.path.isfile(path):
        raise app.UsageError(f"--validation: no file {path!r}; run python -m benchmarks.transfer_validation")
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    chosen = document["result"]["chosen"]
    trained = {arm: finetune_rate(arm, settings) for arm in chosen}
    wrong = {arm: rate for arm, rate in chosen.items() if rate != trained[arm]}
    if wrong:
        raise app.UsageError(f"--validation: {path} chose {wrong}, but the warm starts train at {trained}")
    return validation_report(document)


def main(argv):
    del argv
    settings = TransferSettings.quick() if flags.FLAGS.quick else TransferSettings.full()
    if flags.FLAGS.seeds:
        settings = dataclasses.replace(settings, seeds=tuple(int(seed) for seed in flags.FLAGS.seeds))
    rate_choice = validation_paragraph(flags.FLAGS.validation, settings) if flags.FLAGS.validation else None
    start_machine = machine.describe_machine()
    document = standalone.stamp(run(settings), "benchmarks.transfer", start_machine)
    if rate_choice:
        document["rate_choice"] = rate_choice
    standalone.publish(
        document, flags.FLAGS.output, report=report, section="transfer", markdown_path=flags.FLAGS.markdown, plot=plot
    )


if __name__ == "__main__":
    flags.DEFINE_bool("quick", False, "A smoke run of seconds; its figures mean nothing.")
    flags.DEFINE_list("seeds", None, "Seeds to run (default 0,1,2).")
    flags.DEFINE_string("output", os.path.join(_ROOT, "benchmarks", "results", "transfer.json"), "JSON results file.")
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "Markdown file whose section is rewritten.")
    flags.DEFINE_string(
        "validation",
        os.path.join(_ROOT, "benchmarks", "results", "transfer_validation.json"),
        "The validation sweep that chose the fine-tuning rate, quoted in the section; empty for none.",
    )
    app.run(main)
