"""LeakyReLU and PReLU networks: do their int8 QAT files compute what the QAT model computes?

Usage::

    python -m benchmarks.rectifier_agreement --activations=relu,leaky_relu,prelu --seeds=0,1

Real CIFAR-10 (``../shared/data/cifar10-15k.npz``: 12,000 training and 3,000 test
images, pixels scaled to [0, 1]). The network: three blocks of two 3x3
convolutions (32, 64, 128 filters, no bias) each followed by BatchNormalization and
the activation, a 2x2 max pooling after each block, global average pooling and a
Dense(10) on logits. Activations: ``relu`` (the reference), ``leaky_relu``
(``LeakyReLU(0.1)``, as in YOLO's backbones) and ``prelu`` (``PReLU`` with one slope
per channel, as in MediaPipe's face networks). Float training 3 epochs at Adam 1e-3,
batch 64; quantization-aware fine-tuning 1 epoch at Adam 1e-4; an int8 file from the
QAT model's own ranges (``tflite_export.convert(mode="int8")``).

On the 3,000 test images: the accuracy of the float model, the QAT model and the
file, and the file's top-1 agreement with the QAT model, with kopt's emulation of
the file's LeakyReLU and PReLU kernels (``kopt.quantization.fixed_point``) and with
it switched off (those layers rounding the real function once, as before), on the
same model and file. Results go to ``benchmarks/results/rectifier_agreement.json``
and BENCHMARKS.md.
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
from benchmarks import markdown  # noqa: E402
from benchmarks import standalone  # noqa: E402
from kopt.quantization import file_ops  # noqa: E402
from kopt.quantization import quantize_model  # noqa: E402
from tflite_export.atomic import atomic_write_json  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CIFAR = os.path.join(_ROOT, "..", "shared", "data", "cifar10-15k.npz")
L = keras.layers
ACTIVATIONS = {
    "relu": lambda: L.ReLU(),
    "leaky_relu": lambda: L.LeakyReLU(0.1),
    "prelu": lambda: L.PReLU(shared_axes=[1, 2]),
}


def network(activation, filters=(32, 64, 128)):
    """The benchmark's CNN with ``activation`` (a key of :data:`ACTIVATIONS`) after every convolution."""
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for width in filters:
        for _ in range(2):
            x = L.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = ACTIVATIONS[activation]()(L.BatchNormalization()(x))
        x = L.MaxPooling2D()(x)
    return keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)), name=f"cnn_{activation}")


def _define_flags():
    flags.DEFINE_list("activations", list(ACTIVATIONS), "Activations to measure.")
    flags.DEFINE_list("seeds", ["0"], "Seeds; every one is reported.")
    flags.DEFINE_integer("epochs", 3, "Float training epochs.")
    flags.DEFINE_integer("max_train_examples", 12000, "Training images used (the first N).")
    flags.DEFINE_string(
        "output", os.path.join(_ROOT, "benchmarks", "results", "rectifier_agreement.json"), "JSON results file."
    )


def _top1(outputs):
    return np.argmax(outputs, -1)


def measure(activation, seed, epochs, workdir, max_train_examples=12000, max_test_examples=None):
    """One row: accuracies, the file's agreement with and without the kernel emulation, minutes."""
    data = np.load(_CIFAR)
    x_train = data["x_train"][:max_train_examples].astype("float32") / 255.0
    y_train = data["y_train"][:max_train_examples].astype("int64")
    x_test = data["x_test"][:max_test_examples].astype("float32") / 255.0
    y_test = data["y_test"][:max_test_examples].astype("int64")
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    model = network(activation)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(1e-3), loss)
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=2)
    float_top1 = _top1(model.predict(x_test, verbose=0))
    qat = quantize_model(model)
    qat.compile(keras.optimizers.Adam(1e-4), loss)
    qat.fit(x_train, y_train, batch_size=64, epochs=1, verbose=2)
    path = tflite_export.convert(qat, os.path.join(workdir, f"{activation}-{seed}.tflite"), mode="int8")
    file_top1 = _top1(tflite_export.predict(path, x_test))
    qat_top1 = _top1(qat.predict(x_test, verbose=0))
    emulation = file_ops._rectifier_op
    file_ops._rectifier_op = lambda wrapper, inputs: None  # each layer rounds the real function once
    try:
        qat.make_predict_function(force=True)
        rounded_once_top1 = _top1(qat.predict(x_test, verbose=0))
    finally:
        file_ops._rectifier_op = emulation
        qat.make_predict_function(force=True)
    integer, _ = tflite_export.is_fully_integer(path)

    def share(a, b):
        return round(float(np.mean(a == b)), 4)

    return {
        "activation": activation, "seed": seed, "epochs": epochs, "train_examples": len(x_train),
        "float_accuracy": share(float_top1, y_test), "qat_accuracy": share(qat_top1, y_test),
        "file_accuracy": share(file_top1, y_test), "agreement": share(qat_top1, file_top1),
        "agreement_rounded_once": share(rounded_once_top1, file_top1), "fully_integer": bool(integer),
        "minutes": round((time.perf_counter() - start) / 60, 1),
    }  # fmt: skip


def _key(row):
    return row["activation"], row["epochs"], row["seed"]


def main(argv):
    del argv  # absl leaves only what no flag took; stamp reads the command as typed
    standalone.check_choices("activations", flags.FLAGS.activations, ACTIVATIONS)
    start_machine = machine.describe_machine()
    rows = standalone.kept_rows(flags.FLAGS.output)  # rows of other activations and seeds stay
    with tempfile.TemporaryDirectory(prefix="kopt-rectifier-") as workdir:
        for activation in flags.FLAGS.activations:
            for seed in flags.FLAGS.seeds:
                row = measure(activation, int(seed), flags.FLAGS.epochs, workdir, flags.FLAGS.max_train_examples)
                logging.info("%s", row)
                rows = standalone.put_row(rows, row, key=_key)
                document = standalone.stamp({"rows": rows}, "benchmarks.rectifier_agreement", start_machine)
                atomic_write_json(flags.FLAGS.output, document)
    body = report(rows)
    print(body)
    markdown.write_section(os.path.join(_ROOT, "BENCHMARKS.md"), "rectifier_agreement", body)


def report(rows):
    """The BENCHMARKS.md section: settings and one row per activation, epochs and seed."""
    commands = sorted(
        {
            f"`python -m benchmarks.rectifier_agreement --activations={r['activation']} --seeds={r['seed']} "
            f"--epochs={r['epochs']}`"
            for r in rows
        }
    )
    lines = [
        "## LeakyReLU and PReLU: int8 QAT files against their QAT models",
        "",
        f"Written by {', '.join(commands)}. Real CIFAR-10: 12,000 training and 3,000 test images, pixels in [0, 1]. "
        "A CNN of three blocks of two 3x3 convolutions (32, 64, 128 filters) each with BatchNormalization and the "
        "activation, 2x2 max pooling per block, global average pooling, Dense(10); `leaky_relu` is LeakyReLU(0.1), "
        "`prelu` a PReLU with one slope per channel. Float training at Adam 1e-3, batch 64; QAT one epoch at Adam "
        "1e-4; the int8 file from the QAT model's ranges, run by LiteRT (XNNPACK). Agreement: top-1 agreement of "
        "the file with the QAT model on the 3,000 test images; 'rounded once' is the same model and file with "
        "kopt's emulation of the file's LEAKY_RELU and PRELU kernels switched off, as before it existed. Float "
        "accuracy is read with BatchNormalization's moving statistics after the float epochs; the QAT model trains "
        "one epoch more, at 1e-4, and is above it on every row.",
        "",
        "| activation | epochs | seed | float acc | QAT acc | int8 file acc | agreement | agreement, rounded once "
        "| fully integer | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['activation']} | {r['epochs']} | {r['seed']} | {100 * r['float_accuracy']:.2f}% "
            f"| {100 * r['qat_accuracy']:.2f}% | {100 * r['file_accuracy']:.2f}% | {100 * r['agreement']:.2f}% "
            f"| {100 * r['agreement_rounded_once']:.2f}% | {'yes' if r['fully_integer'] else 'no'} | {r['minutes']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
