"""Net2Net and transfer_weights on a recurrent network: a grown LSTM against the wide LSTM from scratch.

Usage::

    python -m benchmarks.transfer_sequence                # seeds 0,1,2
    python -m benchmarks.transfer_sequence --quick        # a smoke run, not figures

The companion of ``benchmarks.transfer`` (a CIFAR-10 CNN) on the MNIST-rows
classifier of ``benchmarks.sequence_agreement``. Per seed:

* the *source*, an LSTM of ``--narrow`` units, trains ``--source_steps`` steps
  (Adam from 1e-3, a cosine to 0; the 22,699 training digits, batch 64);
* ``scratch``: an LSTM of ``--wide`` units from its own initialization, the same
  schedule over ``--steps`` steps;
* ``net2net``: the source with :func:`kopt.transfer.widen` on its LSTM (every gate
  copied, the recurrent rows divided, noise 0.05 of the kernel's spread on the
  copies), fine-tuned ``--steps // 2`` steps: Adam warmed up over 30 steps to the
  same 1e-3 (taken over, not tuned), then a cosine to 0 at its last step;
* ``transfer``: the scratch model's initialization with the source's weights
  copied in by :func:`kopt.transfer.transfer_weights` (each gate's first
  ``--narrow`` units, the head's matching rows; the rest stays random), fine-tuned
  as ``net2net``.

Both targets see the same batches in the same order. Test accuracy (10,000 digits)
every ``--eval_every`` steps; the figure of merit is ``benchmarks.transfer``'s: the
scratch final is the trailing mean of its last 3 checkpoints, and a start reaches it
at the first checkpoint from which its trailing mean stays at or above it. Results:
``benchmarks/results/transfer_sequence.json``, a PNG beside it and the
``transfer_sequence`` section of BENCHMARKS.md.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import machine  # noqa: E402
from benchmarks import pruning_plot  # noqa: E402
from benchmarks import sequence_agreement  # noqa: E402
from benchmarks import standalone  # noqa: E402
from benchmarks import transfer_run  # noqa: E402
from kopt.transfer import transfer_weights  # noqa: E402
from kopt.transfer import widen  # noqa: E402

__all__ = ["plot", "report", "run_seed"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SMOOTH, _WARMUP, _RATE, _NOISE, _BATCH = 3, 30, 1e-3, 0.05, 64


def _lstm(units):
    inputs = keras.Input((28, 28), name="rows")
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(keras.layers.LSTM(units, name="rnn")(inputs)))


def run_seed(seed, settings, data):
    """One seed's source, exactness check and two curves, as a JSON-ready dict."""
    x_test = data[2]
    common = dict(eval_every=settings["eval_every"], batch_size=_BATCH, order_seed=seed, calibration=data[0][:1])
    keras.utils.set_random_seed(seed)
    source = _lstm(settings["narrow"])
    steps = settings["source_steps"]
    source_curve = transfer_run.train_curve(
        source, data, steps=steps, learning_rate=keras.optimizers.schedules.CosineDecay(_RATE, steps), **common
    )
    exact = widen(source, "rnn", settings["wide"], seed=seed)
    difference = float(np.max(np.abs(exact.predict(x_test, verbose=0) - source.predict(x_test, verbose=0))))
    keras.utils.set_random_seed(seed + 1)
    scratch = _lstm(settings["wide"])
    steps = settings["steps"]
    curves = {
        "scratch": transfer_run.train_curve(
            scratch, data, steps=steps, learning_rate=keras.optimizers.schedules.CosineDecay(_RATE, steps), **common
        )
    }
    warm = steps // 2
    grown = widen(source, "rnn", settings["wide"], seed=seed, noise_stddev=_NOISE)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, warm - min(_WARMUP, warm - 1), warmup_target=_RATE, warmup_steps=min(_WARMUP, warm - 1)
    )
    curves["net2net"] = transfer_run.train_curve(grown, data, steps=warm, learning_rate=schedule, **common)
    keras.utils.set_random_seed(seed + 1)  # the scratch model's initialization, then the source's weights
    copied = _lstm(settings["wide"])
    copy_report = transfer_weights(source, copied)
    curves["transfer"] = transfer_run.train_curve(copied, data, steps=warm, learning_rate=schedule, **common)
    final = transfer_run.smoothed(curves["scratch"], _SMOOTH)[-1][1]
    row = {
        "seed": seed, "source_accuracy": source_curve[-1][1], "widened_max_abs_diff": difference,
        "scratch_final": final, "transfer_share": copy_report.values_transferred / copy_report.values_total,
        "curves": curves,
    }  # fmt: skip
    for arm in ("net2net", "transfer"):
        reached = transfer_run.steps_to_reach(curves[arm], final, _SMOOTH)
        row.update({
            f"{arm}_start": curves[arm][0][1], f"{arm}_final": transfer_run.smoothed(curves[arm], _SMOOTH)[-1][1],
            f"{arm}_steps_to_reach": reached, f"{arm}_within_half": transfer_run.within(reached, warm),
        })  # fmt: skip
    row["within_half"] = row["net2net_within_half"]
    return row


def report(document):
    """The BENCHMARKS.md section: the protocol, then every seed."""
    settings = document["settings"]
    lines = [
        "## Knowledge transfer on a recurrent network: a widened and a transferred LSTM against scratch (issue 26)",
        "",
        f"Written by `{document['command']}` on {document['machine']}; {document['elapsed_min']} min. "
        f"MNIST rows (22,699 training digits, batch 64; 10,000 test digits). Source: LSTM({settings['narrow']}) "
        f"-> Dense(10), {settings['source_steps']} steps, Adam from 1e-3 with a cosine to 0. Target: "
        f"LSTM({settings['wide']}) -> Dense(10). `scratch`: its own initialization, the same schedule over "
        f'{settings["steps"]} steps. `net2net`: `widen(source, "rnn", {settings["wide"]}, noise_stddev=0.05)`, '
        f"fine-tuned {settings['steps'] // 2} steps (half), Adam warmed up over 30 steps to 1e-3 (the scratch "
        "rate, not tuned), then a cosine to 0. `transfer`: the scratch model's initialization with "
        "`transfer_weights(source, target)` (each gate's first units, the head's matching rows; the rest stays "
        "random), fine-tuned as net2net. Same batches in the same order. Test accuracy every "
        f"{settings['eval_every']} steps; finals: trailing mean of 3 checkpoints; steps to reach: the first "
        "checkpoint from which a start's trailing mean stays at or above the scratch final.",
        "",
        "| seed | source % | widened, max logit change before training | scratch final % | net2net start % "
        "| net2net final % | net2net steps to reach | transfer: values copied | transfer start % | transfer final % "
        "| transfer steps to reach |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in document["rows"]:
        lines.append(
            f"| {row['seed']} | {100 * row['source_accuracy']:.2f} | {row['widened_max_abs_diff']:.1e} "
            f"| {100 * row['scratch_final']:.2f} | {100 * row['net2net_start']:.2f} | {100 * row['net2net_final']:.2f} "
            f"| {_reached(row, 'net2net')} | {100 * row['transfer_share']:.1f}% | {100 * row['transfer_start']:.2f} "
            f"| {100 * row['transfer_final']:.2f} | {_reached(row, 'transfer')} |"
        )
    count = len(document["rows"])
    met = {arm: sum(row[f"{arm}_within_half"] for row in document["rows"]) for arm in ("net2net", "transfer")}
    lines += [
        "",
        f"Within half the steps at the scratch final: net2net on {met['net2net']} of {count} seeds, "
        f"transfer_weights on {met['transfer']} of {count}.",
    ]
    return "\n".join(lines)


def _reached(row, arm):
    steps = row[f"{arm}_steps_to_reach"]
    return "not reached" if steps is None else f"{steps} ({'within' if row[f'{arm}_within_half'] else 'past'} half)"


def plot(document, path):
    """Every seed's two test-accuracy curves against the step."""
    figure, axes = pruning_plot.pyplot().subplots(figsize=(7, 4))
    for row in document["rows"]:
        for arm, style in (("scratch", "-"), ("net2net", "--"), ("transfer", ":")):
            curve = np.array(row["curves"][arm])
            axes.plot(curve[:, 0], 100 * curve[:, 1], style, label=f"seed {row['seed']} {arm}")
    axes.set_xlabel("training step")
    axes.set_ylabel("test accuracy, %")
    axes.legend(fontsize="small")
    return pruning_plot.save_figure(
        figure, path, "Widened and transferred LSTM against the wide LSTM from scratch, MNIST rows"
    )


def main(argv):
    del argv
    started = time.time()
    quick = flags.FLAGS.quick
    settings = {
        "narrow": flags.FLAGS.narrow, "wide": flags.FLAGS.wide,
        "source_steps": 8 if quick else flags.FLAGS.source_steps, "steps": 8 if quick else flags.FLAGS.steps,
        "eval_every": 4 if quick else flags.FLAGS.eval_every,
    }  # fmt: skip
    if not 0 < settings["narrow"] < settings["wide"]:
        raise app.UsageError(
            f"--wide must exceed --narrow >= 1. Received: --narrow={settings['narrow']} --wide={settings['wide']}"
        )
    x_train, y_train, x_test, y_test = sequence_agreement._data("LSTM")
    data = (x_train[:256], y_train[:256], x_test[:100], y_test[:100]) if quick else (x_train, y_train, x_test, y_test)
    seeds = [0] if quick else [int(seed) for seed in flags.FLAGS.seeds]
    start_machine = machine.describe_machine()
    rows = []
    for seed in seeds:
        rows.append(run_seed(seed, settings, data))
        logging.info("seed %d: %s", seed, {key: value for key, value in rows[-1].items() if key != "curves"})
    document = standalone.stamp({}, "benchmarks.transfer_sequence", start_machine)
    document.update(settings=settings, rows=rows, elapsed_min=round((time.time() - started) / 60, 1))
    standalone.publish_seeded_run(
        document, "transfer_sequence", quick=quick, output_dir=flags.FLAGS.output_dir,
        markdown_path=flags.FLAGS.markdown, report=report, plot=plot,
    )  # fmt: skip


if __name__ == "__main__":
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; each trains its own source.")
    flags.DEFINE_integer("narrow", 32, "The source LSTM's units.")
    flags.DEFINE_integer("wide", 64, "The target LSTM's units.")
    flags.DEFINE_integer("source_steps", 3500, "The source's steps (about 10 epochs: trained to convergence).")
    flags.DEFINE_integer("steps", 2000, "The scratch model's steps; Net2Net gets half.")
    flags.DEFINE_integer("eval_every", 100, "Steps between test measurements.")
    flags.DEFINE_bool("quick", False, "A smoke run (256 digits, a few steps, seed 0): not figures.")
    flags.DEFINE_string("output_dir", os.path.join(_ROOT, "benchmarks", "results"), "Where the JSON and PNG go.")
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "Markdown file whose section is rewritten.")
    app.run(main)
