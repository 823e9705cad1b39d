"""Should magnitude pruning of a whole MobileNet prune its depthwise kernels? (issue 25)

Usage::

    python -m benchmarks.depthwise_pruning                # seeds 0,1,2
    python -m benchmarks.depthwise_pruning --quick        # minutes: a smoke run, not figures

Per seed: the CIFAR suite's MobileNetV2-0.35 (``cifar_models``, 32x32, trained from
scratch with ``cifar_training.train``: 15 epochs, Adam cosine from 2e-3, flips and
shifts) on the 12,000 training images of ``../shared/data/cifar10-15k.npz``. Then,
for each target sparsity, the CIFAR suite's pruning recipe (``PolynomialDecay`` from
0 to the target over the first 60% of 3 fine-tuning epochs, cosine from 5e-4,
``UpdatePruningStep``) twice from the same float model:

* ``default``: ``prune_low_magnitude(model, schedule)``: depthwise kernels stay dense;
* ``depthwise pruned``: the same, with every DepthwiseConv2D named in
  ``layer_schedules`` so that its kernel is pruned to the target too (kopt's
  behaviour before this benchmark).

Accuracy is the stripped Keras model's top-1 on the 3,000 test images. The share
of zeros is counted over every prunable weight (depthwise kernels included).

Results: ``benchmarks/results/depthwise_pruning.json``, a PNG beside it and the
``depthwise_pruning`` section of BENCHMARKS.md.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import cifar_models  # noqa: E402
from benchmarks import cifar_training  # noqa: E402
from benchmarks import kopt_side  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks import pruning_plot  # noqa: E402
from benchmarks import standalone  # noqa: E402
from benchmarks.cifar_settings import CifarSettings  # noqa: E402
from benchmarks.core import data as core_data  # noqa: E402
from kopt import pruning  # noqa: E402
from kopt.pruning import prunable  # noqa: E402
from tflite_export.layers import leaf_layers  # noqa: E402

__all__ = ["measure_seed", "plot", "report", "zero_shares"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(_ROOT), "shared", "data", "cifar10-15k.npz")
VARIANTS = ("default", "depthwise pruned")


def zero_shares(model):
    """``(zeros over all prunable weights, share of prunable weights in depthwise kernels)``."""
    zeros = total = depthwise = 0
    for layer in leaf_layers(model):
        if not (layer.weights and prunable.is_prunable(layer)):
            continue
        for weight in prunable.get_prunable_weights(layer):
            values = keras.ops.convert_to_numpy(weight.value)
            zeros += int((values == 0).sum())
            total += values.size
            depthwise += values.size if prunable.is_dense_by_default(layer) else 0
    return zeros / total, depthwise / total


def _accuracy(model, x, y):
    return float((np.argmax(model.predict(x, batch_size=256, verbose=0), -1) == y.reshape(-1)).mean())


def measure_seed(seed, arrays, settings, targets):
    """One float model, then each target pruned with and without its depthwise kernels."""
    x_train, y_train, x_test, y_test = arrays
    dense = cifar_models.build("mobilenet_v2", keras, seed)
    cifar_training.train(
        keras, dense, x_train, y_train, epochs=settings["float_epochs"],
        learning_rate=settings["float_learning_rate"], seed=seed,
    )  # fmt: skip
    rows = [{"seed": seed, "target": 0.0, "variant": "float", "accuracy": _accuracy(dense, x_test, y_test)}]
    rows[0]["zeros"], depthwise_share = zero_shares(dense)
    steps = (len(x_train) // cifar_training.BATCH) * settings["finetune_epochs"]
    depthwise = [layer.name for layer in dense.layers if prunable.is_dense_by_default(layer)]
    for target in targets:
        for variant in VARIANTS:
            schedule = cifar_training.prune_schedule(pruning, settings, steps, target)
            named = {name: schedule for name in depthwise} if variant == "depthwise pruned" else None
            wrapped = pruning.prune_low_magnitude(kopt_side.TRAINER.copy_of(dense), schedule, layer_schedules=named)
            cifar_training.train(
                keras, wrapped, x_train, y_train, epochs=settings["finetune_epochs"],
                learning_rate=settings["finetune_learning_rate"], seed=seed, callbacks=[pruning.UpdatePruningStep()],
            )  # fmt: skip
            stripped = pruning.strip_pruning(wrapped)
            zeros, _ = zero_shares(stripped)
            row = {"seed": seed, "target": target, "variant": variant, "accuracy": _accuracy(stripped, x_test, y_test)}
            rows.append({**row, "zeros": zeros})
            logging.info("seed %d, %.0f%%, %s: %.2f%% accuracy", seed, target * 100, variant, row["accuracy"] * 100)
    return rows, depthwise_share


def report(document):
    """The BENCHMARKS.md section."""
    settings = document["settings"]
    lines = [
        "## Depthwise kernels and whole-model pruning: MobileNetV2 on CIFAR-10 (issue 25)",
        "",
        f"Written by `{document['command']}` on {document['machine']}; {document['elapsed_min']} min. "
        "MobileNetV2-0.35 (32x32, `weights=None`) trained from scratch for "
        f"{settings['float_epochs']} epochs on {document['data']}, then pruned with the CIFAR suite's recipe "
        f"({settings['finetune_epochs']} epochs, PolynomialDecay to the target over the first "
        f"{settings['prune_end_fraction']:.0%}). `default` leaves the depthwise kernels dense (kopt's default, "
        "as tfmot); `depthwise pruned` names every DepthwiseConv2D in `layer_schedules`. Depthwise kernels "
        f"hold {document['depthwise_share']:.1%} of the prunable weights. Accuracy: the stripped Keras model "
        "on the 3,000 test images; zeros: over all prunable weights. At one target the default has fewer "
        "zeros, so compare at equal zeros too (the PNG plots accuracy against zeros).",
        "",
        "| target | variant | seeds | accuracy (mean) | zeros |",
        "|---|---|---|---|---|",
    ]
    for target, variant in _groups(document["rows"]):
        rows = [r for r in document["rows"] if r["target"] == target and r["variant"] == variant]
        lines.append(
            f"| {target:.0%} | {variant} | {len(rows)} | {np.mean([r['accuracy'] for r in rows]):.2%} | "
            f"{np.mean([r['zeros'] for r in rows]):.1%} |"
        )
    lines += ["", "| seed | target | variant | accuracy |", "|---|---|---|---|"]
    for row in document["rows"]:
        lines.append(f"| {row['seed']} | {row['target']:.0%} | {row['variant']} | {row['accuracy']:.2%} |")
    return "\n".join(lines)


def _groups(rows):
    return list(dict.fromkeys((row["target"], row["variant"]) for row in rows))


def plot(document, path):
    """Accuracy against the share of zeros, one colour per variant, one marker per seed and target.

    The share of zeros, not the target, is the x axis: at one target the default
    prunes fewer weights, so the two variants are compared at equal zeros.
    """
    figure, axes = pruning_plot.pyplot().subplots(figsize=(6, 4))
    floats = [r for r in document["rows"] if r["variant"] == "float"]
    for variant in VARIANTS:
        rows = floats + [r for r in document["rows"] if r["variant"] == variant]
        axes.scatter([r["zeros"] for r in rows], [r["accuracy"] for r in rows], label=variant)
    axes.set_xlabel("share of zeros among the prunable weights")
    axes.set_ylabel("test accuracy")
    axes.legend()
    return pruning_plot.save_figure(figure, path, "MobileNetV2-0.35, CIFAR-10: depthwise kernels pruned or dense")


def main(argv):
    del argv
    started = time.time()
    quick = flags.FLAGS.quick
    settings = (CifarSettings.quick() if quick else CifarSettings()).as_dict()
    seeds = [0] if quick else [int(s) for s in flags.FLAGS.seeds]
    targets = [float(t) for t in flags.FLAGS.targets]
    arrays = cifar_training.load_cifar(core_data.load_arrays(DATA, settings.get("max_train_examples")), settings)
    start_machine = machine.describe_machine()
    rows = []
    share = None
    for seed in seeds:
        seed_rows, share = measure_seed(seed, arrays, settings, targets)
        rows += seed_rows
    document = standalone.stamp({}, "benchmarks.depthwise_pruning", start_machine)
    document.update(
        data=core_data.data_summary(DATA, settings.get("max_train_examples")),
        settings=settings,
        seeds=seeds,
        depthwise_share=share,
        rows=rows,
        elapsed_min=round((time.time() - started) / 60, 1),
    )
    standalone.publish_seeded_run(
        document,
        "depthwise_pruning",
        quick=quick,
        output_dir=flags.FLAGS.output_dir,
        markdown_path=flags.FLAGS.markdown,
        report=report,
        plot=plot,
    )


if __name__ == "__main__":
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; each trains its own float model.")
    flags.DEFINE_list("targets", ["0.8", "0.9"], "Target sparsities.")
    flags.DEFINE_bool("quick", False, "A smoke run in minutes (CifarSettings.quick, seed 0): not figures.")
    flags.DEFINE_string("output_dir", os.path.join(_ROOT, "benchmarks", "results"), "Where the JSON and PNG go.")
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "Markdown file whose section is rewritten.")
    app.run(main)
