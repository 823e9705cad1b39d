"""Transformer and recurrent models: do their int8 files compute what Keras computes, after real training?

Usage::

    python -m benchmarks.sequence_agreement --models=TransformerEncoder,LSTM,GRU --seeds=0,1

Real data, read as sequences (``../shared/data/mnist-22k.npz``): an LSTM or GRU (64
units) reads each digit's 28 rows as 28 time steps of 28 pixels; a Transformer
encoder (token embedding 32, 4 heads of 8, GELU feed-forward 64, two residual
LayerNormalizations, average pooling) reads the digit as 49 tokens, one per 4x4 patch,
each token the patch's position and its mean intensity on 16 levels (vocabulary 784).

Per model and seed: float training (Adam 1e-3, batch 64, ``--epochs``) on the 22,699
training digits; quantization-aware fine-tuning for one epoch at Adam 1e-4; an int8
QAT file (``tflite_export.convert(mode="int8")``) and an int8 PTQ file of the float
model calibrated on 500 training digits, by the TFLite converter and by kopt
(``quantize_calibrated``: the QAT graph with calibrated ranges, no training). On the 10,000 test digits: accuracies, and the
top-1 agreement of each file with the Keras model it came from. Results go to
``benchmarks/results/sequence_agreement.json`` and BENCHMARKS.md.
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
from benchmarks import markdown  # noqa: E402
from benchmarks import standalone  # noqa: E402
from kopt.quantization import quantize_calibrated  # noqa: E402
from kopt.quantization import quantize_model  # noqa: E402
from tflite_export.atomic import atomic_write_json  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MNIST = os.path.join(_ROOT, "..", "shared", "data", "mnist-22k.npz")
_LEVELS, _PATCH = 16, 4
L = keras.layers


def tokens(images):
    """Each 4x4 patch of a 28x28 digit as one token: ``position * 16 + intensity level``."""
    count = images.shape[0]
    patches = images.reshape(count, 7, _PATCH, 7, _PATCH).mean(axis=(2, 4)) / 256.0
    levels = np.minimum((patches * _LEVELS).astype("int32"), _LEVELS - 1).reshape(count, 49)
    return (np.arange(49, dtype="int32") * _LEVELS + levels).astype("int32")


def _transformer():
    inputs = keras.Input((49,), dtype="int32", name="tokens")
    x = L.Embedding(49 * _LEVELS, 32, name="embedding")(inputs)
    attended = L.MultiHeadAttention(num_heads=4, key_dim=8, name="attention")(x, x)
    x = L.LayerNormalization(name="attention_norm")(L.Add()([x, attended]))
    hidden = L.Dense(64, activation="gelu", name="ffn_in")(x)
    x = L.LayerNormalization(name="ffn_norm")(L.Add()([x, L.Dense(32, name="ffn_out")(hidden)]))
    return keras.Model(inputs, L.Dense(10, name="logits")(L.GlobalAveragePooling1D()(x)), name="transformer")


def _recurrent(layer_class):
    def build():
        inputs = keras.Input((28, 28), name="rows")
        return keras.Model(inputs, L.Dense(10, name="logits")(layer_class(64, name="rnn")(inputs)))

    return build


MODELS = {"TransformerEncoder": _transformer, "LSTM": _recurrent(L.LSTM), "GRU": _recurrent(L.GRU)}


def _define_flags():
    flags.DEFINE_list("models", list(MODELS), "Models to measure.")
    flags.DEFINE_list("seeds", ["0"], "Seeds; every one is reported.")
    flags.DEFINE_integer("epochs", 2, "Float training epochs.")
    flags.DEFINE_string(
        "output", os.path.join(_ROOT, "benchmarks", "results", "sequence_agreement.json"), "JSON results file."
    )


def _data(name):
    data = np.load(_MNIST)
    if name == "TransformerEncoder":
        prepare = tokens
    else:

        def prepare(images):
            return (images / 255.0).astype("float32")

    return (
        prepare(data["x_train"]),
        data["y_train"].astype("int64"),
        prepare(data["x_test"]),
        data["y_test"].astype("int64"),
    )


def train_classifier(model, x, y, epochs, learning_rate, decay, batch_size=64):
    """Compiles ``model`` with Adam (cosine-decayed to 0 over the epochs if ``decay``) and fits it; returns it.

    The recipe the sequence benchmarks built on these classifiers share (``structured_sequence``,
    ``clustering_sequence``): sparse categorical cross-entropy on logits, no shuffling seed of its own.
    """
    steps = epochs * (len(x) // batch_size)
    rate = keras.optimizers.schedules.CosineDecay(learning_rate, max(steps, 1)) if decay else learning_rate
    model.compile(keras.optimizers.Adam(rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return model


def _agreement(reference, got):
    return round(float(np.mean(np.argmax(reference, -1) == np.argmax(got, -1))), 4)


def measure(name, seed, epochs, workdir):
    x_train, y_train, x_test, y_test = _data(name)
    keras.utils.set_random_seed(seed)
    model = MODELS[name]()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=2)
    float_out = model.predict(x_test, verbose=0)
    ptq = tflite_export.convert(
        model, os.path.join(workdir, f"{name}-ptq.tflite"), mode="int8", representative_dataset=x_train[:500]
    )
    ptq_out = tflite_export.predict(ptq, x_test)
    calibrated = quantize_calibrated(model, os.path.join(workdir, f"{name}-calibrated.tflite"), x_train[:500])
    calibrated_out = tflite_export.predict(calibrated, x_test)
    qat = quantize_model(model)
    qat.compile(keras.optimizers.Adam(1e-4), loss, metrics=["accuracy"])
    qat.fit(x_train, y_train, batch_size=64, epochs=1, verbose=2)
    qat_out = qat.predict(x_test, verbose=0)
    qat_file = tflite_export.convert(qat, os.path.join(workdir, f"{name}-qat.tflite"), mode="int8")
    qat_file_out = tflite_export.predict(qat_file, x_test)

    def accuracy(outputs):
        return round(float(np.mean(np.argmax(outputs, -1) == y_test)), 4)

    return {
        "model": name, "seed": seed, "epochs": epochs,
        "float_accuracy": accuracy(float_out), "ptq_file_accuracy": accuracy(ptq_out),
        "ptq_agreement": _agreement(float_out, ptq_out),
        "calibrated_accuracy": accuracy(calibrated_out), "calibrated_agreement": _agreement(float_out, calibrated_out),
        "qat_accuracy": accuracy(qat_out), "qat_file_accuracy": accuracy(qat_file_out),
        "qat_agreement": _agreement(qat_out, qat_file_out),
        "qat_kib": round(os.path.getsize(qat_file) / 1024, 1), "ptq_kib": round(os.path.getsize(ptq) / 1024, 1),
        "minutes": round((time.perf_counter() - start) / 60, 1),
    }  # fmt: skip


def _key(row):
    return row["model"], row["epochs"], row["seed"]


def main(argv):
    del argv
    standalone.check_choices("models", flags.FLAGS.models, MODELS)
    rows = standalone.kept_rows(flags.FLAGS.output)  # rows of other models and seeds stay
    with tempfile.TemporaryDirectory(prefix="kopt-sequence-") as workdir:
        for name in flags.FLAGS.models:
            for seed in flags.FLAGS.seeds:
                row = measure(name, int(seed), flags.FLAGS.epochs, workdir)
                logging.info("%s", row)
                rows = standalone.put_row(rows, row, key=_key)
                atomic_write_json(
                    flags.FLAGS.output, {"command": "python -m benchmarks.sequence_agreement", "rows": rows}
                )
    body = report(rows)
    print(body)
    markdown.write_section(os.path.join(_ROOT, "BENCHMARKS.md"), "sequence_agreement", body)


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.2f}%"


def report(rows):
    """The BENCHMARKS.md section: settings and one row per model, epochs and seed."""
    commands = sorted(
        {
            f"`python -m benchmarks.sequence_agreement --models={r['model']} --seeds={r['seed']} --epochs={r['epochs']}`"
            for r in rows
        }
    )
    lines = [
        "## Transformer, LSTM and GRU: int8 files against their Keras models (issue 21)",
        "",
        f"Written by {', '.join(commands)}. Real MNIST read as sequences (LSTM/GRU: 28 rows of 28 pixels, 64 "
        "units; Transformer encoder: 49 patch tokens, embedding 32, 4 heads of 8, GELU FFN 64, LayerNormalization), "
        "float training at Adam 1e-3, batch 64, on the 22,699 training digits; QAT one epoch at Adam 1e-4; PTQ "
        "calibrated on 500 training digits, by the TFLite converter (PTQ) and by "
        "`kopt.quantization.quantize_calibrated` (kopt PTQ: QAT's graph, ranges calibrated, no training). Figures on the 10,000 test digits; agreement is the top-1 agreement "
        "of the LiteRT file (XNNPACK) with the Keras model it was converted from (PTQ and kopt PTQ: the float "
        "model; QAT: the QAT model).",
        "",
        "| model | epochs | seed | float acc | PTQ int8 acc | PTQ agreement | kopt PTQ acc | kopt PTQ agreement "
        "| QAT acc | QAT int8 acc | QAT agreement | PTQ KiB | QAT KiB | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['epochs']} | {r['seed']} | {100 * r['float_accuracy']:.2f}% "
            f"| {100 * r['ptq_file_accuracy']:.2f}% | {100 * r['ptq_agreement']:.2f}% "
            f"| {_percent(r.get('calibrated_accuracy'))} | {_percent(r.get('calibrated_agreement'))} "
            f"| {100 * r['qat_accuracy']:.2f}% "
            f"| {100 * r['qat_file_accuracy']:.2f}% | {100 * r['qat_agreement']:.2f}% | {r['ptq_kib']} | {r['qat_kib']} "
            f"| {r['minutes']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
