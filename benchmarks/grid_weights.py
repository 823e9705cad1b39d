"""Int8 files of recurrent and Conv3D models: kernels stored float32 against int8 + DEQUANTIZE.

Usage::

    python -m benchmarks.grid_weights --seeds=0,1,2

A quantization-aware model's recurrent loop (LSTM, GRU, Bidirectional) and a Conv3D
stay float in the TFLite file, with kernels that hold int8-grid values. The
converter writes those kernels as float32; ``tflite_export.convert`` stores them as
int8 read through a ``DEQUANTIZE`` (``grid_weights_int8=True``, the default). This
benchmark converts each model both ways and measures what changes:

* ``lstm64``, ``gru64``, ``bilstm64``, ``lstm256``: LSTM(64), GRU(64),
  Bidirectional(LSTM(64)) or LSTM(256) over the 28 rows of an MNIST digit, Dense(10);
* ``conv3d``: 4-frame clips of an MNIST digit moving one pixel right per frame,
  Conv3D(16, 3)-Conv3D(32, 3)-GlobalAveragePooling3D-Dense(10).

Each model is made quantization-aware (``kopt.quantization.quantize_model``) and
trained 1 epoch on the 22,699 training digits (batch 64, Adam 1e-3): enough for
trained grids; the accuracy is reported, not a result. Both files are compared on
the 10,000 test digits (accuracy, top-1 agreement, max |diff|). Latency: LiteRT,
XNNPACK, 1 thread, batch 1, the two files timed alternately in one pass
(:func:`tflite_export.interleaved_latency`, 15 rounds of 100 calls), median;
ratio = int8 kernels / float32 kernels. Results go to
``benchmarks/results/grid_weights.json`` and BENCHMARKS.md.
"""

import gzip
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tflite_export  # noqa: E402
from benchmarks import standalone  # noqa: E402
from kopt.quantization import quantize_model  # noqa: E402

__all__ = ["MODELS", "measure", "report"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DATA = os.path.join(_ROOT, "..", "shared", "data")
L = keras.layers
FRAMES = 4


def _rows(layer):
    rows = keras.Input((28, 28))
    return keras.Model(rows, L.Dense(10, name="logits")(layer(rows)))


def _conv3d():
    clip = keras.Input((FRAMES, 28, 28, 1))
    x = L.Conv3D(16, 3, activation="relu", name="conv1")(clip)
    x = L.Conv3D(32, (1, 3, 3), activation="relu", name="conv2")(x)
    return keras.Model(clip, L.Dense(10, name="logits")(L.GlobalAveragePooling3D()(x)))


MODELS = {
    "lstm64": (lambda: _rows(L.LSTM(64, name="rnn")), "rows"),
    "gru64": (lambda: _rows(L.GRU(64, name="rnn")), "rows"),
    "bilstm64": (lambda: _rows(L.Bidirectional(L.LSTM(64), name="rnn")), "rows"),
    "lstm256": (lambda: _rows(L.LSTM(256, name="rnn")), "rows"),
    "conv3d": (_conv3d, "clips"),
}


def load_digits(kind, limit=None):
    """``(x_train, y_train, x_test, y_test)`` of MNIST as rows, or as clips of a digit moving right."""
    with np.load(os.path.join(_DATA, "mnist-22k.npz")) as data:
        arrays = [data[key][:limit] for key in ("x_train", "y_train", "x_test", "y_test")]
    arrays[0], arrays[2] = (images.astype("float32") / 255.0 for images in (arrays[0], arrays[2]))
    if kind == "clips":
        arrays[0], arrays[2] = (
            np.stack([np.roll(images, step, axis=2) for step in range(FRAMES)], axis=1)[..., None]
            for images in (arrays[0], arrays[2])
        )
    return arrays


def measure(name, seed, workdir, *, limit=None, epochs=1, rounds=15, calls=100):
    """One row: ``MODELS[name]`` made quantization-aware, trained, converted both ways."""
    build, kind = MODELS[name]
    keras.utils.set_random_seed(seed)
    x_train, y_train, x_test, y_test = load_digits(kind, limit)
    qat = quantize_model(build())
    qat.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=0)
    row = {"model": name, "seed": seed, "params": int(qat.count_params())}
    paths, outputs = {}, {}
    for key, grid in (("float32", False), ("int8", True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # The loop's float ops and the fixed batch, by design.
            path = tflite_export.convert(
                qat, os.path.join(workdir, f"{name}-{key}.tflite"), mode="int8", grid_weights_int8=grid
            )
        with open(path, "rb") as handle:
            data = handle.read()
        row[f"{key}_bytes"], row[f"{key}_gzip_bytes"] = len(data), len(gzip.compress(data, 9))
        outputs[key] = tflite_export.predict(path, x_test)
        row[f"{key}_accuracy"] = round(float(np.mean(np.argmax(outputs[key], -1) == y_test)), 4)
        paths[key] = path
    row["agreement"] = round(float(np.mean(np.argmax(outputs["int8"], -1) == np.argmax(outputs["float32"], -1))), 4)
    row["max_abs_diff"] = float(np.abs(outputs["int8"] - outputs["float32"]).max())
    latency = tflite_export.interleaved_latency(paths, rounds=rounds, calls=calls, seed=seed)
    row["float32_ms"], row["int8_ms"] = round(latency["float32"], 4), round(latency["int8"], 4)
    row["latency_ratio"] = round(latency["int8"] / latency["float32"], 3)
    return row


def report(rows):
    """The BENCHMARKS.md section: settings and one row per model and seed."""
    seeds = ",".join(str(seed) for seed in sorted({r["seed"] for r in rows}))
    lines = [
        "## Int8 files of recurrent and Conv3D models: loop kernels stored float32 against int8",
        "",
        f"Written by `python -m benchmarks.grid_weights --seeds={seeds}`. Each model made quantization-aware "
        "(`kopt.quantization.quantize_model`) and trained 1 epoch on the 22,699 MNIST training digits (batch 64, "
        "Adam 1e-3; accuracy reported, not a result): LSTM(64), GRU(64), Bidirectional(LSTM(64)) and LSTM(256) over "
        "the 28 rows of a digit, then Dense(10); `conv3d`: 4-frame clips of a digit moving one pixel right per frame, "
        "Conv3D(16, 3x3x3)-Conv3D(32, 1x3x3)-GlobalAveragePooling3D-Dense(10). Converted to int8 by "
        "`tflite_export.convert(mode='int8')` with `grid_weights_int8=False` (the loop's and Conv3D's kernels as "
        "the converter writes them: float32 holding int8-grid values) and `True` (the default: stored int8, read "
        "through a DEQUANTIZE). Accuracy, agreement and max |diff| on the 10,000 test digits. Latency: LiteRT, "
        "XNNPACK, 1 thread, batch 1, both files timed alternately in one pass (`tflite_export.interleaved_latency`, "
        "15 rounds of 100 calls), median; ratio = int8 kernels / float32 kernels.",
        "",
        "| model | seed | params | float32 kernels: bytes (gzip) | int8 kernels: bytes (gzip) | size ratio | "
        "accuracy % (both) | agreement | max abs diff | float32 kernels ms | int8 kernels ms | latency ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (list(MODELS).index(r["model"]), r["seed"])):
        accuracy = f"{100 * r['float32_accuracy']:.2f}"
        if r["int8_accuracy"] != r["float32_accuracy"]:
            accuracy = f"{accuracy} / {100 * r['int8_accuracy']:.2f}"
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['params']:,} | {r['float32_bytes']:,} ({r['float32_gzip_bytes']:,}) "
            f"| {r['int8_bytes']:,} ({r['int8_gzip_bytes']:,}) | {r['int8_bytes'] / r['float32_bytes']:.3f} "
            f"| {accuracy} | {r['agreement']:.4f} | {r['max_abs_diff']:.1e} | {r['float32_ms']} | {r['int8_ms']} "
            f"| {r['latency_ratio']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    standalone.run_model_seeds("grid_weights", MODELS, measure, report)
