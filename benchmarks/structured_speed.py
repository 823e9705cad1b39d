"""Does structured pruning make a real network faster? MobileNetV2 on CIFAR-10, accuracy and latency (issue 25).

Usage::

    python -m benchmarks.structured_speed                        # seeds 0,1,2
    python -m benchmarks.structured_speed --quick                # minutes: a smoke run, not figures

Per seed: ``keras.applications.MobileNetV2`` (alpha 0.35, 32x32 input,
``weights=None``, 10 logits) is trained from scratch on the 12,000 CIFAR-10
training images of ``../shared/data/cifar10-15k.npz`` (Adam, cosine decay from
2e-3, batch 64, random flips and 4-pixel shifts, BatchNormalization momentum 0.9
for the short schedule; ``--epochs``). For each
fraction, ``kopt.pruning.prune_channels`` removes that share of the output
channels of every prunable Conv2D/Dense (lowest L1 norm; channels tied by
residual adds are removed together); for each speedup of ``--speedups``,
``kopt.pruning.latency_channel_plan`` removes channels where the layers' measured
milliseconds are (each layer timed alone in LiteRT once per seed, channels 8 at a
time, at most 75% of a group) until the modelled time is 1/speedup. Each smaller
model is fine-tuned the same way (``--finetune_epochs``, cosine decay from 5e-4);
the latency plans of ``--distill_speedups`` are fine-tuned a second time through
``kopt.distillation.Distiller``, the trained unpruned model as teacher (alpha 0.1,
temperature 4), as a practitioner recovers accuracy after pruning. So that those
extra epochs do not count for pruning, a copy of the unpruned model is trained the
same epochs at the same rate (the control, :data:`CONTROL`), and every plan's
accuracy drop is given against it too. Every model is converted to a float32
file; accuracy is the file's, on the 3,000 test images. All files of a
seed are timed in one interleaved pass: LiteRT with its default XNNPACK
delegate, 1 thread, batch 1, the median of the rounds' means; ratio = the
unpruned file's milliseconds / the file's (above 1: faster).

Results: ``benchmarks/results/structured_speed.json``, a PNG beside it, and the
``structured_speed`` section of BENCHMARKS.md.
"""

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

import tflite_export  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks import pruning_plot  # noqa: E402
from benchmarks import standalone  # noqa: E402
from benchmarks.core import data as core_data  # noqa: E402
from benchmarks.core import latency  # noqa: E402
from benchmarks.core import scoring  # noqa: E402
from kopt import distillation  # noqa: E402
from kopt import pruning  # noqa: E402
from tflite_export.cloning import copy_model  # noqa: E402

__all__ = ["CONTROL", "build", "measure_seed", "plot", "report", "summarize"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(_ROOT), "shared", "data", "cifar10-15k.npz")
BATCH = 64
DISTILL_ALPHA, DISTILL_TEMPERATURE = 0.1, 4.0  # as the CIFAR suite's distillation row
# The unpruned model fine-tuned as every pruned one is: the extra epochs alone, which drops are also read against.
CONTROL = "unpruned, fine-tuned"


def build(seed):
    """The network, initialized from ``seed``."""
    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNetV2(
        (32, 32, 3), alpha=0.35, weights=None, classes=10, classifier_activation=None
    )
    # keras.applications' BatchNormalization momentum (0.999) suits ImageNet's long schedules; over a few
    # thousand steps the moving statistics lag the weights and inference predicts one class. 0.9 keeps up.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    return model


def _augment(images, rng):
    """Random horizontal flips and shifts of up to 4 pixels (zero padding), per image."""
    flipped = np.where(rng.random(len(images))[:, None, None, None] < 0.5, images[:, :, ::-1], images)
    padded = np.pad(flipped, ((0, 0), (4, 4), (4, 4), (0, 0)))
    out = np.empty_like(images)
    for index, (dy, dx) in enumerate(rng.integers(0, 9, size=(len(images), 2))):
        out[index] = padded[index, dy : dy + 32, dx : dx + 32]
    return out


def _train(model, x, y, epochs, learning_rate, seed, teacher=None):
    """Trains ``model`` in place and returns it; with a ``teacher``, through a ``Distiller`` (alpha 0.1, T 4)."""
    steps = epochs * (len(x) // BATCH)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(steps, 1))
    if teacher is None:
        trained = model
        loss = {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
    else:
        trained = distillation.Distiller(model, teacher, alpha=DISTILL_ALPHA, temperature=DISTILL_TEMPERATURE)
        loss = {}  # the Distiller's own: labels and the teacher's softened logits
    trained.compile(optimizer=keras.optimizers.Adam(schedule), metrics=["accuracy"], **loss)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(x))[: (len(x) // BATCH) * BATCH]
        history = trained.fit(_augment(x[order], rng), y[order], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        logging.info("epoch %d/%d: %s", epoch + 1, epochs, {k: round(v[-1], 4) for k, v in history.history.items()})
    return model


def variant_name(fraction=None, speedup=None, distilled=False):
    """The row label: ``"unpruned"``, ``"uniform 30%"``, ``"latency 1.7x"`` or ``"latency 2.5x, distilled"``."""
    if speedup is not None:
        return f"latency {speedup:g}x" + (", distilled" if distilled else "")
    return "unpruned" if not fraction else f"uniform {fraction:.0%}"


def measure_seed(
    seed,
    *,
    epochs,
    finetune_epochs,
    fractions,
    rounds,
    calls,
    speedups=(),
    distill_speedups=(),
    max_train=None,
    control=True,
):
    """One seed's rows: ``{"variant", "fraction", "params", "kib", "tflite_accuracy", "ms", "speedup"}`` per model.

    ``fraction`` is the share of prunable channels removed (for a latency plan, over all its groups).
    ``control`` adds the :data:`CONTROL` row, after the unpruned one. Each of
    ``distill_speedups`` (a subset of ``speedups``) adds that latency plan again,
    fine-tuned with the trained unpruned model as its teacher.
    """
    missing = [speedup for speedup in distill_speedups if speedup not in speedups]
    if missing:
        raise ValueError(f"distill_speedups must be among speedups={list(speedups)}. Received: {missing}")
    x_train, y_train, x_test, y_test = core_data.load_arrays(DATA, max_train)
    model = _train(build(seed), x_train, y_train, epochs, 2e-3, seed)
    plans = {variant_name(): None}
    for fraction in fractions:
        plans[variant_name(fraction)] = pruning.channel_plan(model, fraction)
    if speedups:
        times = tflite_export.layer_latencies(model, log=logging.info)
        for speedup in speedups:
            plans[variant_name(speedup=speedup)] = pruning.latency_channel_plan(model, speedup, latencies=times)
        for speedup in distill_speedups:
            plans[variant_name(speedup=speedup, distilled=True)] = plans[variant_name(speedup=speedup)]
    models, removed = {}, {}
    for name, plan in plans.items():
        if plan is None:
            models[name], removed[name] = model, 0.0
            if control:
                continued = _train(copy_model(model), x_train, y_train, finetune_epochs, 5e-4, seed + 1000)
                models[CONTROL], removed[CONTROL] = continued, 0.0
            continue
        prunable = [group for group in plan["groups"] if not group["frozen"]]
        removed[name] = sum(len(group["removed"]) for group in prunable) / sum(g["channels"] for g in prunable)
        smaller = pruning.apply_channel_plan(model, plan)
        teacher = model if name.endswith(", distilled") else None
        models[name] = _train(smaller, x_train, y_train, finetune_epochs, 5e-4, seed + 1000, teacher=teacher)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kopt-structured-speed-") as workdir:
        paths = {
            name: tflite_export.convert(each, os.path.join(workdir, f"{number}.tflite"), batch_size=1)
            for number, (name, each) in enumerate(models.items())
        }
        timed = {name: latency.ready_interpreter(path) for name, path in paths.items()}
        milliseconds = latency.interleaved_ms(timed, rounds=rounds, calls=calls)
        reference = milliseconds[variant_name()]
        for name, path in paths.items():
            # The timed files have a fixed batch of 1; accuracy comes from a resizable file of the same model.
            scored = tflite_export.convert(models[name], path[: -len(".tflite")] + "-scored.tflite")
            with open(scored, "rb") as handle:
                top1 = scoring.interpreter_top1(handle.read(), x_test)
            with open(path, "rb") as handle:
                flatbuffer = handle.read()
            rows.append(
                {
                    "seed": seed,
                    "variant": name,
                    "fraction": round(removed[name], 4),
                    "params": int(models[name].count_params()),
                    "kib": round(len(flatbuffer) / 1024, 1),
                    "tflite_accuracy": round(float(np.mean(top1 == y_test)), 4),
                    "ms": round(milliseconds[name], 4),
                    "speedup": round(reference / milliseconds[name], 3),
                }
            )
    return rows


def summarize(rows):
    """Per variant, over seeds: mean speedup, mean accuracy, and its drop from each seed's unpruned model.

    Where the rows hold a :data:`CONTROL` for every seed, the drop from the control
    is given as well (``control_drop_points_mean`` / ``_max``).
    """

    def drops(mine, reference):
        return [_accuracy(rows, row["seed"], reference) - row["tflite_accuracy"] for row in mine]

    seeds = {row["seed"] for row in rows}
    controlled = seeds == {row["seed"] for row in rows if row["variant"] == CONTROL}
    summary = []
    for variant in dict.fromkeys(row["variant"] for row in rows):
        mine = [row for row in rows if row["variant"] == variant]
        entry = {
            "variant": variant,
            "fraction_mean": round(float(np.mean([row["fraction"] for row in mine])), 3),
            "seeds": len(mine),
            "speedup_mean": round(float(np.mean([row["speedup"] for row in mine])), 3),
            "accuracy_mean": round(float(np.mean([row["tflite_accuracy"] for row in mine])), 4),
        }
        for prefix, reference in (("accuracy", variant_name()), ("control", CONTROL)):
            if prefix == "accuracy" or controlled:
                found = drops(mine, reference)
                entry[f"{prefix}_drop_points_mean"] = round(100 * float(np.mean(found)), 2)
                entry[f"{prefix}_drop_points_max"] = round(100 * float(np.max(found)), 2)
        summary.append(entry)
    return summary


def _accuracy(rows, seed, variant):
    return next(row for row in rows if row["seed"] == seed and row["variant"] == variant)["tflite_accuracy"]


def report(document):
    """The BENCHMARKS.md section."""
    settings = document["settings"]
    lines = [
        "## Structured pruning for speed: MobileNetV2 on CIFAR-10 (issue 25)",
        "",
        f"Written by `{document['command']}` on {document['machine']}; {document['elapsed_min']} min. "
        "`keras.applications.MobileNetV2` (alpha 0.35, 32x32, `weights=None`) trained from scratch for "
        f"{settings['epochs']} epochs on {document['data']} (Adam, cosine decay from 2e-3, batch 64, flips and "
        "4-pixel shifts, BatchNormalization momentum 0.9). Uniform rows: `kopt.pruning.prune_channels` (L1, that "
        "share of every prunable layer's channels). Latency rows: `kopt.pruning.latency_channel_plan` (L1, each "
        "layer timed alone in LiteRT, channels 8 at a time, at most 75% of a group) for that modelled speedup. "
        f"Then {settings['finetune_epochs']} epochs of fine-tuning (cosine from 5e-4). Accuracy: the float32 "
        "file on the 3,000 test images. Latency: LiteRT, XNNPACK, 1 thread, batch 1, the files of a seed "
        f"timed in one interleaved pass of {settings['rounds']} rounds; speedup = unpruned ms / ms.",
    ]
    if any(row["variant"].endswith(", distilled") for row in document["rows"]):
        lines[-1] += (
            " Rows marked distilled: the same latency plan fine-tuned the same epochs through "
            "`kopt.distillation.Distiller`, the trained unpruned model as teacher (alpha "
            f"{DISTILL_ALPHA:g}, temperature {DISTILL_TEMPERATURE:g})."
        )
    controlled = all("control_drop_points_mean" in entry for entry in document["summary"])
    if controlled:
        lines[-1] += (
            f" Control: `{CONTROL}`, the unpruned model trained the same {settings['finetune_epochs']} epochs at the "
            "same rate; a drop against it is what pruning costs, the extra epochs set apart."
        )
    lines += [
        "",
        "| plan | channels removed | seeds | speedup (mean) | accuracy (mean) | drop, points (mean / worst) |"
        + (" drop from the control (mean / worst) |" if controlled else ""),
        "|---|---|---|---|---|---|" + ("---|" if controlled else ""),
    ]
    for entry in document["summary"]:
        lines.append(
            f"| {entry['variant']} | {entry['fraction_mean']:.0%} | {entry['seeds']} | {entry['speedup_mean']}x | "
            f"{entry['accuracy_mean']:.2%} | {entry['accuracy_drop_points_mean']} / "
            f"{entry['accuracy_drop_points_max']} |"
            + (f" {entry['control_drop_points_mean']} / {entry['control_drop_points_max']} |" if controlled else "")
        )
    lines += [
        "",
        "| seed | plan | channels removed | params | KiB | accuracy | ms | speedup |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in document["rows"]:
        lines.append(
            f"| {row['seed']} | {row['variant']} | {row['fraction']:.0%} | {row['params']:,} | {row['kib']} | "
            f"{row['tflite_accuracy']:.2%} | {row['ms']} | {row['speedup']}x |"
        )
    return "\n".join(lines)


def plot(document, path):
    """Accuracy against speedup, one point per seed and plan."""
    figure, axes = pruning_plot.pyplot().subplots(figsize=(6, 4))
    for variant in dict.fromkeys(row["variant"] for row in document["rows"]):
        rows = [row for row in document["rows"] if row["variant"] == variant]
        axes.scatter([r["speedup"] for r in rows], [r["tflite_accuracy"] for r in rows], label=variant)
    axes.set_xlabel("speedup over the unpruned file (XNNPACK, 1 thread)")
    axes.set_ylabel("test accuracy (float32 file)")
    axes.legend()
    return pruning_plot.save_figure(figure, path, "MobileNetV2-0.35, CIFAR-10: channels removed")


def main(argv):
    del argv
    started = time.time()
    quick = flags.FLAGS.quick
    settings = {
        "epochs": 1 if quick else flags.FLAGS.epochs,
        "finetune_epochs": 1 if quick else flags.FLAGS.finetune_epochs,
        "fractions": [float(f) for f in flags.FLAGS.fractions],
        "speedups": [float(s) for s in flags.FLAGS.speedups],
        "distill_speedups": [float(s) for s in flags.FLAGS.distill_speedups],
        "rounds": 2 if quick else flags.FLAGS.rounds,
        "calls": 20 if quick else 200,
    }
    max_train = 1024 if quick else None
    seeds = [0] if quick else [int(s) for s in flags.FLAGS.seeds]
    standalone.check_choices("distill_speedups", flags.FLAGS.distill_speedups, flags.FLAGS.speedups)
    start_machine = machine.describe_machine()
    rows = []
    for seed in seeds:
        rows += measure_seed(seed, max_train=max_train, **settings)
        logging.info("seed %d: %s", seed, [row for row in rows if row["seed"] == seed])
    document = standalone.stamp({}, "benchmarks.structured_speed", start_machine)
    document.update(
        data=core_data.data_summary(DATA, max_train),
        settings=settings,
        seeds=seeds,
        rows=rows,
        summary=summarize(rows),
        elapsed_min=round((time.time() - started) / 60, 1),
    )
    standalone.publish_seeded_run(
        document,
        "structured_speed",
        quick=quick,
        output_dir=flags.FLAGS.output_dir,
        markdown_path=flags.FLAGS.markdown,
        report=report,
        plot=plot,
    )


if __name__ == "__main__":
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; each trains its own float model.")
    flags.DEFINE_integer("epochs", 15, "Float training epochs.", lower_bound=1)
    flags.DEFINE_integer("finetune_epochs", 5, "Fine-tuning epochs after removing channels.", lower_bound=1)
    flags.DEFINE_list("fractions", ["0.3", "0.5"], "Shares of channels to remove from every layer.")
    flags.DEFINE_list("speedups", ["1.7", "2.2", "2.5"], "Modelled speedups of latency-aware channel plans.")
    flags.DEFINE_list(
        "distill_speedups", ["2.2", "2.5"], "Latency plans of --speedups also fine-tuned with the unpruned teacher."
    )
    flags.DEFINE_integer("rounds", 7, "Timing rounds.", lower_bound=1)
    flags.DEFINE_bool("quick", False, "A smoke run in minutes (1,024 images, 1 epoch, seed 0): not figures.")
    flags.DEFINE_string("output_dir", os.path.join(_ROOT, "benchmarks", "results"), "Where the JSON and PNG go.")
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "Markdown file whose section is rewritten.")
    app.run(main)
