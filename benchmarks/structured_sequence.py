"""Structured pruning of recurrent units: LSTM and GRU on MNIST rows, against a control.

Usage::

    python -m benchmarks.structured_sequence              # LSTM and GRU, seeds 0,1,2
    python -m benchmarks.structured_sequence --quick      # a minute: a smoke run, not figures

Per model and seed: the recurrent classifier of ``benchmarks.sequence_agreement``
(64 units over the 28 rows of an MNIST digit, then 10 logits) is trained from
scratch for ``--float_epochs`` (Adam 1e-3, batch 64) on the 22,699 training digits
of ``../shared/data/mnist-22k.npz``. From that float model:

* ``control``: trained ``--finetune_epochs`` more (Adam from 1e-3, cosine to 0),
  nothing removed: what the extra epochs alone give;
* ``units NN%``: ``kopt.pruning.prune_channels(model, {"rnn": NN/100})`` removes that
  share of the recurrent units (L1 over every gate's columns) from every gate, the
  recurrent kernel and the logits' rows, then the same fine-tuning;
* ``latency N.Nx``: ``kopt.pruning.latency_channel_plan(model, N.N)`` chooses how many
  units go from the layers timed alone in LiteRT (the loop's fixed part measured at
  half width, ``tflite_export.fixed_latencies``), then the same fine-tuning; its
  modelled speedup is reported beside the measured one.

Each model is converted to a float32 TFLite file (the loop Keras 3 runs) and scored
on the 10,000 test digits in LiteRT; the files of a seed and model are timed in one
interleaved pass (LiteRT, XNNPACK, 1 thread, batch 1). Drop: the control's accuracy
minus the row's, in points. Results: ``benchmarks/results/structured_sequence.json``,
a PNG beside it and the ``structured_sequence`` section of BENCHMARKS.md.
"""

import os
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

import tflite_export  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks import pruning_plot  # noqa: E402
from benchmarks import sequence_agreement  # noqa: E402
from benchmarks import standalone  # noqa: E402
from kopt import pruning  # noqa: E402

__all__ = ["measure", "plot", "report"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("LSTM", "GRU")


def measure(name, seed, settings, workdir, data):
    """The rows of one model and seed: float, control and each share of units removed."""
    x_train, y_train, x_test, y_test = data
    keras.utils.set_random_seed(seed)
    dense = sequence_agreement.train_classifier(
        sequence_agreement.MODELS[name](), x_train, y_train, settings["float_epochs"], 1e-3, False
    )
    variants = {"float": dense}
    finetune = settings["finetune_epochs"]
    control = keras.models.clone_model(dense)
    control.set_weights(dense.get_weights())
    variants["control"] = sequence_agreement.train_classifier(control, x_train, y_train, finetune, 1e-3, True)
    for share in settings["shares"]:
        smaller = pruning.prune_channels(dense, {"rnn": share})
        variants[f"units {share:.0%}"] = sequence_agreement.train_classifier(
            smaller, x_train, y_train, finetune, 1e-3, True
        )
    modelled = {}
    for speedup in settings.get("speedups", []):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the static-batch note of each timed layer
            plan = pruning.latency_channel_plan(dense, speedup)
        modelled[f"latency {speedup}x"] = plan["latency"]["modelled_speedup"]
        smaller = pruning.apply_channel_plan(dense, plan)
        variants[f"latency {speedup}x"] = sequence_agreement.train_classifier(
            smaller, x_train, y_train, finetune, 1e-3, True
        )
    paths, rows = {}, []
    for variant, model in variants.items():
        path = os.path.join(workdir, f"{name}-{seed}-{variant.replace(' ', '_').replace('%', '')}.tflite")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the static-batch note
            paths[variant] = tflite_export.convert(model, path)
        accuracy = float(np.mean(np.argmax(tflite_export.predict(path, x_test), -1) == y_test))
        units = model.get_layer("rnn").units
        rows.append({"model": name, "seed": seed, "variant": variant, "units": int(units),
                     "params": int(model.count_params()), "accuracy": round(accuracy, 4),
                     "kib": round(os.path.getsize(path) / 1024, 1)})  # fmt: skip
    times = tflite_export.interleaved_latency(paths, rounds=settings["rounds"], calls=settings["calls"])
    control = next(row for row in rows if row["variant"] == "control")
    for row in rows:
        row["ms"] = round(times[row["variant"]], 5)
        row["latency_ratio"] = round(times[row["variant"]] / times["float"], 3)
        row["drop"] = round(100 * (control["accuracy"] - row["accuracy"]), 2)
        if row["variant"] in modelled:
            row["modelled_speedup"] = round(modelled[row["variant"]], 3)
        logging.info(
            "%s seed %d %s: %.2f%%, x%.3f", name, seed, row["variant"], 100 * row["accuracy"], row["latency_ratio"]
        )
    return rows


def report(document):
    """The BENCHMARKS.md section: per model and variant the mean over seeds, then every seed."""
    settings = document["settings"]
    lines = [
        "## Structured pruning of recurrent units: LSTM and GRU on MNIST rows",
        "",
        f"Written by `{document['command']}` on {document['machine']}; {document['elapsed_min']} min. "
        f"The classifier of `sequence_agreement` (64 recurrent units over 28 rows of 28 pixels, 10 logits), "
        f"trained {settings['float_epochs']} epochs (Adam 1e-3, batch 64) on the 22,699 MNIST training digits. "
        f"`control`: {settings['finetune_epochs']} more epochs (Adam from 1e-3, cosine to 0), nothing removed. "
        f'`units NN%`: `prune_channels(model, {{"rnn": NN/100}})` (L1 over every gate), then the same '
        "epochs. Accuracy: the float32 file on the 10,000 test digits in LiteRT; drop: the control's minus the "
        "row's, in points. Latency: LiteRT, XNNPACK, 1 thread, batch 1, the files of a seed and model in one "
        f"interleaved pass ({settings['rounds']} rounds of {settings['calls']} calls); ratio to the float file. "
        "`latency N.Nx`: `latency_channel_plan(model, N.N)` chooses the units from the layers timed alone in "
        "LiteRT, the loop's fixed part measured at half width (`tflite_export.fixed_latencies`), then the same "
        "epochs; *modelled* is the plan's own speedup estimate, *measured* is 1 / the latency ratio.",
        "",
        "| model | variant | units | seeds | accuracy % (mean) | drop from the control (mean / worst) "
        "| latency ratio (mean) | speedup modelled / measured (mean) | KiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, variant in dict.fromkeys((r["model"], r["variant"]) for r in document["rows"]):
        rows = [r for r in document["rows"] if r["model"] == model and r["variant"] == variant]
        drops = [r["drop"] for r in rows]
        lines.append(
            f"| {model} | {variant} | {rows[0]['units']} | {len(rows)} | "
            f"{100 * np.mean([r['accuracy'] for r in rows]):.2f} | {np.mean(drops):.2f} / {max(drops):.2f} | "
            f"{np.mean([r['latency_ratio'] for r in rows]):.3f} | {_speedups(rows)} | {rows[0]['kib']} |"
        )
    lines += [
        "",
        "| model | seed | variant | accuracy % | drop | ms | latency ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in document["rows"]:
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['variant']} | {100 * r['accuracy']:.2f} | {r['drop']:.2f} "
            f"| {r['ms']} | {r['latency_ratio']} |"
        )
    return "\n".join(lines)


def _speedups(rows):
    if "modelled_speedup" not in rows[0]:
        return "-"
    measured = np.mean([1 / r["latency_ratio"] for r in rows])
    return f"{np.mean([r['modelled_speedup'] for r in rows]):.2f}x / {measured:.2f}x"


def plot(document, path):
    """Accuracy against latency ratio, one panel per model, every seed's point."""
    return pruning_plot.accuracy_panels(
        document["rows"],
        "latency_ratio",
        "latency / float file",
        path,
        "Recurrent units removed: accuracy against latency, MNIST rows",
    )


def main(argv):
    del argv
    started = time.time()
    quick = flags.FLAGS.quick
    standalone.check_choices("models", flags.FLAGS.models, list(MODELS))
    settings = {
        "float_epochs": 1 if quick else flags.FLAGS.float_epochs,
        "finetune_epochs": 1 if quick else flags.FLAGS.finetune_epochs,
        "shares": [float(share) for share in flags.FLAGS.shares],
        "speedups": [float(speedup) for speedup in flags.FLAGS.speedups],
        "rounds": 2 if quick else 7,
        "calls": 10 if quick else 100,
    }
    bad = [share for share in settings["shares"] if not 0 < share < 1]
    if bad:
        raise app.UsageError(f"--shares must lie strictly between 0 and 1. Received: --shares={flags.FLAGS.shares}")
    if any(not speedup > 1 for speedup in settings["speedups"]):
        raise app.UsageError(f"--speedups must be above 1. Received: --speedups={flags.FLAGS.speedups}")
    data = sequence_agreement._data("LSTM")  # MNIST rows in [0, 1], as the GRU reads them too
    if quick:
        data = (data[0][:640], data[1][:640], data[2][:200], data[3][:200])
    seeds = [0] if quick else [int(seed) for seed in flags.FLAGS.seeds]
    start_machine = machine.describe_machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kopt-structured-sequence-") as workdir:
        for name in flags.FLAGS.models:
            for seed in seeds:
                rows += measure(name, seed, settings, workdir, data)
    document = standalone.stamp({}, "benchmarks.structured_sequence", start_machine)
    document.update(settings=settings, seeds=seeds, rows=rows, elapsed_min=round((time.time() - started) / 60, 1))
    standalone.publish_seeded_run(
        document, "structured_sequence", quick=quick, output_dir=flags.FLAGS.output_dir,
        markdown_path=flags.FLAGS.markdown, report=report, plot=plot,
    )  # fmt: skip


if __name__ == "__main__":
    flags.DEFINE_list("models", list(MODELS), "Recurrent classifiers of sequence_agreement to prune.")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; each trains its own float model.")
    flags.DEFINE_list("shares", ["0.5", "0.75"], "Shares of the recurrent units to remove.")
    flags.DEFINE_list("speedups", ["1.3"], "Speedups asked of latency_channel_plan; empty: no latency rows.")
    flags.DEFINE_integer("float_epochs", 10, "Float training epochs.")
    flags.DEFINE_integer("finetune_epochs", 5, "Epochs after removing units (and of the control).")
    flags.DEFINE_bool("quick", False, "A smoke run in a minute (640 digits, 1 epoch each, seed 0): not figures.")
    flags.DEFINE_string("output_dir", os.path.join(_ROOT, "benchmarks", "results"), "Where the JSON and PNG go.")
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "Markdown file whose section is rewritten.")
    app.run(main)
