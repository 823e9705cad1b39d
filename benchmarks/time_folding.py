"""Per-frame layers exported once per frame or once over all frames: latency, size, agreement.

Usage::

    python -m benchmarks.time_folding --seeds=0,1,2

Three models people build around ``TimeDistributed`` (weights drawn with each seed;
latency does not depend on training, and the two files of a model compute one
function):

* ``clip_cnn``: 8-frame 32x32 colour clips, per-frame Conv2D(16)-MaxPool-Conv2D(32)
  -GlobalAveragePooling, an LSTM(32) over the frames, Dense(10);
* ``frame_backbone``: the same clips, a per-frame MobileNetV2 (alpha 0.35,
  ``include_top=False``, average pooling) nested in the wrapper, a GRU(32), Dense(10);
* ``tagger``: an LSTM(64) over the 28 rows of an MNIST digit, a per-step Dense(10)
  (a sequence tagger's head).

Each is converted to float32 by ``tflite_export.convert`` with
``fold_time_distributed=False`` (the layer's ops once per frame, as Keras runs it)
and ``True`` (the default: the frames folded into the batch). Clips are 8
consecutive CIFAR-10 test images from ``../shared/data/cifar10-15k.npz``, digits
the MNIST test digits of ``../shared/data/mnist-22k.npz``. Agreement: top-1 and max
|diff| of each file against the Keras model on 64 inputs. Latency: LiteRT, XNNPACK,
1 thread, batch 1, the two files timed alternately in one pass
(:func:`tflite_export.interleaved_latency`), median; ratio = folded / looped
(below 1: the folded file is faster). Results go to
``benchmarks/results/time_folding.json`` and BENCHMARKS.md.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tflite_export  # noqa: E402
from benchmarks import standalone  # noqa: E402

__all__ = ["MODELS", "measure", "report"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DATA = os.path.join(_ROOT, "..", "shared", "data")
L = keras.layers
FRAMES = 8
CHECKED = 64


def _clip_cnn():
    clip = keras.Input((FRAMES, 32, 32, 3))
    x = L.TimeDistributed(L.Conv2D(16, 3, padding="same", activation="relu"), name="frame_conv1")(clip)
    x = L.TimeDistributed(L.MaxPooling2D(), name="frame_pool")(x)
    x = L.TimeDistributed(L.Conv2D(32, 3, padding="same", activation="relu"), name="frame_conv2")(x)
    x = L.TimeDistributed(L.GlobalAveragePooling2D(), name="frame_gap")(x)
    return keras.Model(clip, L.Dense(10, name="logits")(L.LSTM(32, name="temporal")(x)), name="clip_cnn")


def _frame_backbone():
    backbone = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, pooling="avg", weights=None
    )
    clip = keras.Input((FRAMES, 32, 32, 3))
    x = L.TimeDistributed(backbone, name="frame_backbone")(clip)
    return keras.Model(clip, L.Dense(10, name="logits")(L.GRU(32, name="temporal")(x)), name="frame_backbone")


def _tagger():
    rows = keras.Input((28, 28))
    x = L.LSTM(64, return_sequences=True, name="rows")(rows)
    return keras.Model(rows, L.TimeDistributed(L.Dense(10), name="tags")(x), name="tagger")


MODELS = {"clip_cnn": (_clip_cnn, "clips"), "frame_backbone": (_frame_backbone, "clips"), "tagger": (_tagger, "rows")}


def _inputs(kind):
    """``CHECKED`` real inputs: clips of consecutive CIFAR-10 test images, or MNIST test digits as rows."""
    if kind == "clips":
        with np.load(os.path.join(_DATA, "cifar10-15k.npz")) as data:
            images = data["x_test"][: CHECKED * FRAMES].astype("float32") / 255.0
        return images.reshape(CHECKED, FRAMES, 32, 32, 3)
    with np.load(os.path.join(_DATA, "mnist-22k.npz")) as data:
        return data["x_test"][:CHECKED].astype("float32") / 255.0


def measure(name, seed, workdir, *, rounds=7, calls=100):
    """One row: both files of ``MODELS[name]`` built with ``seed``."""
    build, kind = MODELS[name]
    keras.utils.set_random_seed(seed)
    model = build()
    x = _inputs(kind)
    reference = model.predict(x, verbose=0)
    labels = np.argmax(reference, axis=-1)
    row = {"model": name, "seed": seed, "params": int(model.count_params())}
    paths = {}
    for key, fold in (("looped", False), ("folded", True)):
        path = tflite_export.convert(model, os.path.join(workdir, f"{name}-{key}.tflite"), fold_time_distributed=fold)
        checked = tflite_export.verify(path, model, (x, labels))
        counts = tflite_export.inspect(path)["op_counts"]
        row[f"{key}_ops"] = int(sum(counts.values()))
        row[f"{key}_kib"] = round(os.path.getsize(path) / 1024, 1)
        row[f"{key}_agreement"] = round(float(checked["agreement"]), 4)
        row[f"{key}_max_abs_diff"] = float(checked["max_abs_diff"])
        paths[key] = path
    latency = tflite_export.interleaved_latency(paths, rounds=rounds, calls=calls, seed=seed)
    row["looped_ms"], row["folded_ms"] = round(latency["looped"], 4), round(latency["folded"], 4)
    row["latency_ratio"] = round(latency["folded"] / latency["looped"], 3)
    return row


def report(rows):
    """The BENCHMARKS.md section: settings and one row per model and seed."""
    seeds = ",".join(str(seed) for seed in sorted({r["seed"] for r in rows}))
    lines = [
        "## Per-frame layers: once per frame against once over all frames",
        "",
        f"Written by `python -m benchmarks.time_folding --seeds={seeds}`. Untrained models, weights drawn with each "
        "seed (the two files of a model compute one function). `clip_cnn`: 8-frame 32x32 clips, per-frame "
        "Conv2D(16)-MaxPool-Conv2D(32)-GlobalAveragePooling, LSTM(32), Dense(10). `frame_backbone`: the same clips, "
        "a per-frame MobileNetV2 (alpha 0.35, average pooling) inside the `TimeDistributed`, GRU(32), Dense(10). "
        "`tagger`: LSTM(64) over the 28 rows of a digit, a per-step Dense(10). Float32 files from "
        "`tflite_export.convert(fold_time_distributed=False)` (looped: the layer's ops once per frame, as Keras "
        "runs it) and `True` (folded, the default). Agreement and max |diff|: each file against the Keras model on "
        "64 real inputs (clips of 8 consecutive CIFAR-10 test images; MNIST test digits). Latency: LiteRT, XNNPACK, "
        "1 thread, batch 1, both files timed alternately in one pass (`tflite_export.interleaved_latency`, 7 rounds "
        "of 100 calls), median; ratio = folded / looped (below 1: folded is faster).",
        "",
        "| model | seed | params | looped ops | folded ops | looped KiB | folded KiB | agreement (looped / folded) "
        "| max abs diff (looped / folded) | looped ms | folded ms | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (list(MODELS).index(r["model"]), r["seed"])):
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['params']:,} | {r['looped_ops']} | {r['folded_ops']} "
            f"| {r['looped_kib']} | {r['folded_kib']} | {r['looped_agreement']:.4f} / {r['folded_agreement']:.4f} "
            f"| {r['looped_max_abs_diff']:.1e} / {r['folded_max_abs_diff']:.1e} | {r['looped_ms']} | {r['folded_ms']} "
            f"| {r['latency_ratio']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    standalone.run_model_seeds("time_folding", MODELS, measure, report)
