"""LSTM files with the loop or the fused op: size, agreement and latency, after real training.

Usage::

    python -m benchmarks.fused_lstm --seeds=0,1,2

The LSTM classifier of ``benchmarks.sequence_agreement`` (64 units over the 28 rows
of an MNIST digit) is trained for ``--epochs`` (Adam 1e-3, batch 64) and converted
by ``tflite_export.convert`` in three modes, each with the loop Keras 3 runs
(``fuse_lstm=False``; unrolled in int8, where the converter's calibration needs it)
and with TFLite's fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (``fuse_lstm=True``):
float32, dynamic range, and int8 PTQ calibrated by the converter on 500 training
digits. Per file: size, whether it is fully integer, and top-1 agreement with the
float Keras model on the 10,000 test digits. Latency: LiteRT with its default
XNNPACK delegate, 1 thread, batch 1; the loop and fused files of a mode are timed
alternately, call by call, in one pass, and reported as the median ratio
fused / loop. Results go to ``benchmarks/results/fused_lstm.json`` and BENCHMARKS.md.
"""

import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import tflite_export  # noqa: E402
from benchmarks import sequence_agreement  # noqa: E402
from benchmarks import standalone  # noqa: E402

__all__ = ["alternating_latency", "measure", "report"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ("float32", "dynamic", "int8")


def alternating_latency(paths, example, runs=300, warmup=20):
    """Median ``invoke()`` milliseconds of each file on ``example``, the files timed in turn call by call.

    Timing them alternately in one pass spreads whatever else the machine does
    over all of them alike. LiteRT's default XNNPACK delegate, 1 thread. The
    input is a real example (batch 1, float): the builtin kernels' tanh and
    sigmoid take longer on some values than on others, so zeros would mislead.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreters = []
    for path in paths:
        interpreter = Interpreter(model_path=path, num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.asarray(example, detail["dtype"]).reshape(detail["shape"]))
        interpreters.append(interpreter)
    times = [[] for _ in paths]
    for index in range(warmup + runs):
        for interpreter, collected in zip(interpreters, times):
            interpreter.reset_all_variables()
            start = time.perf_counter()
            interpreter.invoke()
            if index >= warmup:
                collected.append(time.perf_counter() - start)
    return [round(1000 * float(np.median(collected)), 4) for collected in times]


def measure(seed, epochs, workdir):
    x_train, y_train, x_test, y_test = sequence_agreement._data("LSTM")
    keras.utils.set_random_seed(seed)
    model = sequence_agreement.MODELS["LSTM"]()
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=2)
    reference = np.argmax(model.predict(x_test, verbose=0), -1)
    row = {"seed": seed, "epochs": epochs, "float_accuracy": round(float(np.mean(reference == y_test)), 4)}
    for mode in MODES:
        paths = {}
        for fused in (False, True):
            path = os.path.join(workdir, f"{mode}-{'fused' if fused else 'loop'}.tflite")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the static-batch and state-reset notes
                tflite_export.convert(
                    model, path, mode=mode, fuse_lstm=fused,
                    representative_dataset=x_train[:500] if mode == "int8" else None,
                )  # fmt: skip
            got = np.argmax(tflite_export.predict(path, x_test), -1)
            kind = "fused" if fused else "loop"
            row[f"{mode}_{kind}_kib"] = round(os.path.getsize(path) / 1024, 1)
            row[f"{mode}_{kind}_agreement"] = round(float(np.mean(got == reference)), 4)
            if mode == "int8":
                row[f"{mode}_{kind}_fully_integer"] = tflite_export.is_fully_integer(path)[0]
            paths[kind] = path
        loop_ms, fused_ms = alternating_latency([paths["loop"], paths["fused"]], x_test[:1])
        row[f"{mode}_loop_ms"], row[f"{mode}_fused_ms"] = loop_ms, fused_ms
        row[f"{mode}_latency_ratio"] = round(fused_ms / loop_ms, 3)
    return row


def report(rows):
    """The BENCHMARKS.md section: settings and one row per mode and seed."""
    commands = sorted({f"`python -m benchmarks.fused_lstm --seeds={r['seed']} --epochs={r['epochs']}`" for r in rows})
    lines = [
        "## LSTM: the loop against TFLite's fused LSTM op (issue 21)",
        "",
        f"Written by {', '.join(commands)}. The LSTM classifier of `sequence_agreement` (64 units, 28 rows of 28 "
        "pixels), trained at Adam 1e-3, batch 64, on the 22,699 MNIST training digits; converted with "
        "`tflite_export.convert(fuse_lstm=False)` (the loop; unrolled in int8) and `fuse_lstm=True` "
        "(`UNIDIRECTIONAL_SEQUENCE_LSTM`); int8 is the converter's PTQ calibrated on 500 training digits. "
        "Agreement: top-1 agreement with the float Keras model on the 10,000 test digits. Latency: LiteRT, XNNPACK, "
        "1 thread, batch 1, the two files of a mode timed alternately in one pass (300 calls after 20 warm-up "
        "calls, on the first test digit), median; ratio = fused / loop (below 1: the fused file is faster).",
        "",
        "| seed | mode | loop KiB | fused KiB | loop agreement | fused agreement | fully integer (loop / fused) "
        "| loop ms | fused ms | latency ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for mode in MODES:
            integer = (
                f"{r[f'{mode}_loop_fully_integer']} / {r[f'{mode}_fused_fully_integer']}" if mode == "int8" else "n/a"
            )
            lines.append(
                f"| {r['seed']} | {mode} | {r[f'{mode}_loop_kib']} | {r[f'{mode}_fused_kib']} "
                f"| {100 * r[f'{mode}_loop_agreement']:.2f}% | {100 * r[f'{mode}_fused_agreement']:.2f}% | {integer} "
                f"| {r[f'{mode}_loop_ms']} | {r[f'{mode}_fused_ms']} | {r[f'{mode}_latency_ratio']} |"
            )
    return "\n".join(lines)


def main(argv):
    del argv
    standalone.run_rows(
        "fused_lstm",
        flags.FLAGS.output,
        lambda workdir: [(int(seed), flags.FLAGS.epochs, workdir) for seed in flags.FLAGS.seeds],
        measure,
        key=lambda r: (r["seed"], r["epochs"]),
        report=report,
    )


if __name__ == "__main__":
    flags.DEFINE_list("seeds", ["0"], "Seeds; every one is reported.")
    flags.DEFINE_integer("epochs", 2, "Float training epochs.")
    flags.DEFINE_string("output", os.path.join(_ROOT, "benchmarks", "results", "fused_lstm.json"), "JSON results file.")
    app.run(main)
