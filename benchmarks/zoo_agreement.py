"""Does the int8 file compute what its QAT model computes, after real training?

Usage::

    python -m benchmarks.zoo_agreement --models=MobileNetV2 --epochs=3 --seeds=0

For each model of ``benchmarks.zoo_models`` (image models only): train from scratch on
the 12,000 CIFAR-10 training images of ``../shared/data/cifar10-15k.npz`` (Adam 1e-3,
batch 64, BatchNormalization momentum 0.9 so that the moving statistics settle within
a few epochs at this data size), quantization-aware fine-tuning for one epoch (Adam at
a tenth of the float rate, as ``kopt-optimize`` does), int8 export, then on the 3,000
test images: float accuracy, QAT accuracy, int8 file accuracy, and the top-1
agreement of the file with its QAT model, overall and where the QAT model's top-two
margin exceeds 0.02. Results go to ``benchmarks/results/zoo_agreement.json``.
"""

import os
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
from benchmarks import zoo_models  # noqa: E402
from kopt.quantization import quantize_calibrated  # noqa: E402
from kopt.quantization import quantize_model  # noqa: E402
from tflite_export.atomic import atomic_write_json  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEFAULT_OUTPUT = os.path.join(_ROOT, "benchmarks", "results", "zoo_agreement.json")


def _define_flags():
    """Flags exist only when this script runs, so benchmarks.zoo's --models does not clash in one process."""
    flags.DEFINE_list("models", ["MobileNetV2"], "Image models of benchmarks.zoo_models.")
    flags.DEFINE_integer("epochs", 3, "Float training epochs.")
    flags.DEFINE_list("seeds", ["0"], "Seeds; every one is reported.")
    flags.DEFINE_float("learning_rate", 1e-3, "Float Adam rate; QAT uses a tenth.")
    flags.DEFINE_string("save_dir", None, "Also save each QAT model here as NAME-SEED-qat.keras.")
    flags.DEFINE_string(
        "output", _DEFAULT_OUTPUT, "JSON results file; BENCHMARKS.md is updated only from the default one."
    )


def _data(name):
    data = np.load(zoo_models._CIFAR)
    scale = zoo_models.MODELS[name][0].scale
    x_train = zoo_models._preprocess(data["x_train"].astype("float32"), scale).astype("float32")
    x_test = zoo_models._preprocess(data["x_test"].astype("float32"), scale).astype("float32")
    return x_train, data["y_train"].astype("int64"), x_test, data["y_test"].astype("int64")


def _margin_mask(probabilities, threshold=0.02):
    top_two = np.sort(probabilities, axis=-1)[:, -2:]
    return (top_two[:, 1] - top_two[:, 0]) > threshold


def measure(name, seed, epochs, learning_rate, workdir):
    x_train, y_train, x_test, y_test = _data(name)
    keras.utils.set_random_seed(seed)
    model = zoo_models.MODELS[name][0]()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=2)
    float_accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    ptq = _ptq_figures(name, seed, model, x_train[:500], x_test, y_test, workdir)
    qat = quantize_model(model)
    qat.compile(keras.optimizers.Adam(learning_rate / 10), "sparse_categorical_crossentropy", metrics=["accuracy"])
    qat.fit(x_train, y_train, batch_size=64, epochs=1, verbose=2)
    if flags.FLAGS.save_dir:
        os.makedirs(flags.FLAGS.save_dir, exist_ok=True)
        qat.save(os.path.join(flags.FLAGS.save_dir, f"{name}-{seed}-qat.keras"))
    path = tflite_export.convert(qat, os.path.join(workdir, f"{name}-{seed}.tflite"), mode="int8")
    keras_out = qat.predict(x_test, verbose=0)
    file_out = tflite_export.predict(path, x_test)
    same = np.argmax(keras_out, -1) == np.argmax(file_out, -1)
    confident = _margin_mask(keras_out)
    return {
        "model": name,
        "seed": seed,
        "epochs": epochs,
        "float_accuracy": round(float(float_accuracy), 4),
        "qat_accuracy": round(float(np.mean(np.argmax(keras_out, -1) == y_test)), 4),
        "int8_accuracy": round(float(np.mean(np.argmax(file_out, -1) == y_test)), 4),
        "agreement": round(float(np.mean(same)), 4),
        "agreement_margin_over_0.02": round(float(np.mean(same[confident])), 4) if confident.any() else None,
        "confident_fraction": round(float(np.mean(confident)), 4),
        "mean_abs_prob_diff": round(float(np.mean(np.abs(keras_out - file_out))), 5),
        "fully_integer": tflite_export.is_fully_integer(path)[0],
        **ptq,
        "minutes": round((time.perf_counter() - start) / 60, 1),
    }


def _ptq_figures(name, seed, model, calibration, x_test, y_test, workdir):
    """Accuracy and top-1 agreement with the float model of both full-integer PTQ files (no training)."""
    reference = np.argmax(model.predict(x_test, verbose=0), -1)
    figures = {}
    for kind, write in (
        (
            "converter_ptq",
            lambda path: tflite_export.convert(model, path, mode="int8", representative_dataset=calibration),
        ),
        ("kopt_ptq", lambda path: quantize_calibrated(model, path, calibration)),
    ):
        got = np.argmax(tflite_export.predict(write(os.path.join(workdir, f"{name}-{seed}-{kind}.tflite")), x_test), -1)
        figures[f"{kind}_accuracy"] = round(float(np.mean(got == y_test)), 4)
        figures[f"{kind}_agreement"] = round(float(np.mean(got == reference)), 4)
    return figures


def _key(row):
    return row["model"], row["epochs"], row["seed"]


def main(argv):
    del argv
    import tempfile

    rows = standalone.kept_rows(flags.FLAGS.output)  # rows of other models, epochs and seeds stay
    with tempfile.TemporaryDirectory(prefix="kopt-agreement-") as workdir:
        for name in flags.FLAGS.models:
            if zoo_models.MODELS.get(name, (None, None))[1] != "image":
                raise app.UsageError(f"--models: {name!r} is not an image model of benchmarks.zoo_models")
            for seed in flags.FLAGS.seeds:
                row = measure(name, int(seed), flags.FLAGS.epochs, flags.FLAGS.learning_rate, workdir)
                logging.info("%s", row)
                rows = standalone.put_row(rows, row, key=_key)
                atomic_write_json(flags.FLAGS.output, {"command": "python -m benchmarks.zoo_agreement", "rows": rows})
    body = report(rows, learning_rate=flags.FLAGS.learning_rate)
    print(body)
    if os.path.abspath(flags.FLAGS.output) == os.path.abspath(_DEFAULT_OUTPUT):
        # A side run (--output elsewhere) holds only its own rows: it must not replace the section.
        markdown.write_section(os.path.join(_ROOT, "BENCHMARKS.md"), "zoo_agreement", body)


def report(rows, *, learning_rate):
    """The BENCHMARKS.md section: settings, one row per model, epochs and seed."""
    commands = sorted(
        {
            f"`python -m benchmarks.zoo_agreement --models={r['model']} --epochs={r['epochs']} --seeds={r['seed']}`"
            for r in rows
        }
    )
    lines = [
        "## Real architectures: the int8 file against its own QAT model (issue 21)",
        "",
        f"Written by {', '.join(commands)}. Settings: trained from scratch on the 12,000 CIFAR-10 training "
        f"images at 32x32 (Adam {learning_rate:g}, batch 64, BatchNormalization momentum 0.9), QAT one epoch at "
        f"Adam {learning_rate / 10:g}, int8 export; figures on the 3,000 test images. Agreement is the top-1 "
        "agreement of the LiteRT file (XNNPACK) with the QAT Keras model; the margin column keeps the images whose "
        "QAT top-two probabilities differ by more than 0.02 (their share in brackets).",
        "",
        "| model | epochs | seed | float acc | QAT acc | int8 file acc | agreement | agreement, margin > 0.02 "
        "| mean abs prob diff | fully integer | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        margin = "n/a" if r["agreement_margin_over_0.02"] is None else f"{100 * r['agreement_margin_over_0.02']:.2f}%"
        lines.append(
            f"| {r['model']} | {r['epochs']} | {r['seed']} | {100 * r['float_accuracy']:.2f}% "
            f"| {100 * r['qat_accuracy']:.2f}% | {100 * r['int8_accuracy']:.2f}% | {100 * r['agreement']:.2f}% "
            f"| {margin} ({100 * r['confident_fraction']:.0f}%) | {r['mean_abs_prob_diff']:.5f} "
            f"| {r['fully_integer']} | {r['minutes']} |"
        )
    with_ptq = [r for r in rows if "kopt_ptq_agreement" in r]
    if with_ptq:
        lines += [
            "",
            "Post-training quantization of the same float models, no training: full-integer files calibrated on 500 "
            "training images by the TFLite converter and by kopt (`quantize_calibrated`, what `kopt-optimize "
            "--ptq=int8` does); agreement is with the float Keras model.",
            "",
            "| model | epochs | seed | float acc | converter PTQ acc | converter PTQ agreement | kopt PTQ acc "
            "| kopt PTQ agreement |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in with_ptq:
            lines.append(
                f"| {r['model']} | {r['epochs']} | {r['seed']} | {100 * r['float_accuracy']:.2f}% "
                f"| {100 * r['converter_ptq_accuracy']:.2f}% | {100 * r['converter_ptq_agreement']:.2f}% "
                f"| {100 * r['kopt_ptq_accuracy']:.2f}% | {100 * r['kopt_ptq_agreement']:.2f}% |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
