"""Conformance matrix: every kopt technique on the Keras model zoo, a Transformer and RNNs.

Usage::

    python -m benchmarks.zoo                       # every model x technique, ~30 min on 2 cores
    python -m benchmarks.zoo --models=MobileNetV2,LSTM --techniques=qat,ptq

Each cell applies one technique to a fresh, untrained model (``benchmarks.zoo_models``),
takes two training steps where the technique trains, exports the result to
TFLite and runs the file against its Keras model on 64 inputs. A cell is

* ``ok``: the technique ran and the file converted and ran (integer files are
  checked to be fully integer; what is not, is listed);
* ``refused``: kopt raised a ``ValueError``/``ConversionError`` whose message
  names what it cannot handle, a documented limit;
* ``crash``: any other exception, a bug.

Agreement here is between the file and its Keras model on an untrained network
(BatchNormalization statistics set from the 64 inputs, so outputs differ between
images), whose top-two classes are often within one int8 step: a low figure in a
QAT or PTQ cell flags a model to look at, it is not an accuracy measure. The results
go to ``benchmarks/results/zoo.json`` and, with ``--readme``, into README.md
between the ``zoo_matrix`` markers, so the table there is never edited by hand.
"""

import json
import multiprocessing
import os
import tempfile
import time
import traceback

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
from benchmarks import zoo_transfer  # noqa: E402
from kopt import clustering  # noqa: E402
from kopt import pruning  # noqa: E402
from kopt import quantization  # noqa: E402
from tflite_export.atomic import atomic_write_json  # noqa: E402

__all__ = ["TECHNIQUES", "markdown_table", "run_cell", "run_cell_isolated"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RESULTS = os.path.join(_ROOT, "benchmarks", "results", "zoo.json")
_CHECK_INPUTS = 64


def _loss():
    # Applications end in softmax, the others in logits; for two smoke steps either loss trains.
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _two_steps(model, x, y, callbacks=()):
    model.compile(keras.optimizers.Adam(1e-4), _loss())
    model.fit(x[:32], y[:32], batch_size=16, epochs=1, verbose=0, callbacks=list(callbacks))
    return model


def _check_file(path, reference, x, y, *, integer=False):
    result = tflite_export.verify(path, reference, (x, y))
    figures = {"agreement": round(result["agreement"], 4), "max_abs_diff": round(result["max_abs_diff"], 5)}
    if integer:
        ok, reasons = tflite_export.is_fully_integer(path)
        figures["fully_integer"] = ok
        if not ok:
            figures["float_ops"] = reasons[:3]
    figures["kib"] = round(os.path.getsize(path) / 1024, 1)
    return figures


def _export(model, x, y, workdir):
    path = tflite_export.convert(model, os.path.join(workdir, "float.tflite"))
    return _check_file(path, model, x, y)


def _wrapped_count(model, wrapper_class):
    return sum(isinstance(layer, wrapper_class) for layer in model.layers)


def _prune(model, x, y, workdir):
    wrapped = pruning.prune_low_magnitude(model, pruning.ConstantSparsity(0.5, begin_step=0, frequency=1))
    layers = _wrapped_count(wrapped, pruning.PruneLowMagnitude)
    _two_steps(wrapped, x, y, [pruning.UpdatePruningStep()])
    stripped = pruning.strip_pruning(wrapped)
    path = tflite_export.convert(stripped, os.path.join(workdir, "pruned.tflite"))
    sparsity = round(pruning.sparsity_report(stripped)["overall"]["sparsity"], 3)
    return {"wrapped_layers": layers, "sparsity": sparsity, **_check_file(path, stripped, x, y)}


def _qat(model, x, y, workdir):
    qat = _two_steps(quantization.quantize_model(model), x, y)
    path = tflite_export.convert(qat, os.path.join(workdir, "qat.tflite"), mode="int8")
    return _check_file(path, qat, x, y, integer=True)


CLUSTERS = 8  # the cluster cells' K: a stripped kernel holding more values was left unclustered


def _cluster(model, x, y, workdir):
    wrapped = _two_steps(clustering.cluster_weights(model, CLUSTERS), x, y)
    layers = _wrapped_count(wrapped, clustering.ClusterWeights)
    stripped = clustering.strip_clustering(wrapped)
    # Kernels and embedding tables; biases stay float, and some are 2-D (a GRU's, an attention projection's).
    kernels = [w for w in stripped.weights if w.path.endswith(("kernel", "embeddings"))]
    most = max((len(np.unique(np.asarray(w.numpy()))) for w in kernels), default=0)
    path = tflite_export.convert(stripped, os.path.join(workdir, "clustered.tflite"))
    return {"wrapped_layers": layers, "max_values_per_kernel": int(most), **_check_file(path, stripped, x, y)}


def _structured(model, x, y, workdir):
    smaller = pruning.prune_channels(model, 0.3)
    path = tflite_export.convert(smaller, os.path.join(workdir, "structured.tflite"))
    figures = _check_file(path, smaller, x, y)
    return {"params_ratio": round(smaller.count_params() / model.count_params(), 3), **figures}


def _ptq(model, x, y, workdir):
    """What ``kopt-optimize --ptq=int8`` does (kopt's calibration); the file is checked against the float model."""
    path = quantization.quantize_calibrated(model, os.path.join(workdir, "ptq.tflite"), x)
    return _check_file(path, model, x, y, integer=True)


def _roundtrip(model, x, y, workdir):
    """Every wrapper kopt put on the model survives ``.keras`` save and load, no custom_objects."""
    checked, skipped = [], []
    for name, wrap in (
        ("pruning", lambda m: pruning.prune_low_magnitude(m)),
        ("qat", quantization.quantize_model),
        ("clustering", lambda m: clustering.cluster_weights(m, 8)),
    ):
        try:
            wrapped = wrap(model)
        except ValueError:  # the technique's own cell reports the refusal
            skipped.append(name)
            continue
        path = os.path.join(workdir, f"{name}.keras")
        wrapped.save(path)
        loaded = keras.models.load_model(path)
        np.testing.assert_allclose(loaded.predict(x[:8], verbose=0), wrapped.predict(x[:8], verbose=0), atol=1e-5)
        checked.append(name)
    if not checked:
        raise ValueError(f"no kopt wrapper applies to this model ({', '.join(skipped)} refused it)")
    return {"round_trips": checked, "not_applicable": skipped}


TECHNIQUES = {
    "export": _export,
    "prune": _prune,
    "qat": _qat,
    "cluster": _cluster,
    "structured": _structured,
    "ptq": _ptq,
    "keras_roundtrip": _roundtrip,
    "widen": lambda model, x, y, workdir: zoo_transfer.widen_cell(model, x, y, workdir, _check_file),
    "deepen": lambda model, x, y, workdir: zoo_transfer.deepen_cell(model, x, y, workdir, _check_file),
}


def run_cell(model_name, technique):
    """Runs one cell; returns ``{"status", "detail", "seconds", ...figures}``."""
    x, y = zoo_models.sample_inputs(model_name, _CHECK_INPUTS)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kopt-zoo-") as workdir:
        try:
            figures = TECHNIQUES[technique](_calibrated(zoo_models.build(model_name), x), x, y, workdir)
            status, detail = "ok", ""
        except (ValueError, tflite_export.ConversionError) as err:
            figures, status, detail = {}, "refused", _first_line(err)
        except Exception as err:  # A crash is what the matrix exists to find.
            figures, status = {}, "crash"
            detail = f"{type(err).__name__}: {_first_line(err)} ({_where(err)})"
    keras.backend.clear_session()
    return {"status": status, "detail": detail, "seconds": round(time.perf_counter() - start, 1), **figures}


def run_cell_isolated(model_name, technique, *, timeout=900):
    """:func:`run_cell` in a fresh process, so a crash in native code is one cell's ``crash``."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_cell_worker, args=(model_name, technique, queue))
    start = time.perf_counter()
    process.start()
    try:
        return queue.get(timeout=timeout)
    except Exception:  # queue.Empty: the process died or hung without an answer.
        process.join(5)
        if process.is_alive():
            process.kill()
            reason = f"no answer within {timeout} s"
        else:
            reason = f"the process died (exit code {process.exitcode}; a negative code is the signal)"
        return {"status": "crash", "detail": reason, "seconds": round(time.perf_counter() - start, 1)}
    finally:
        process.join(30)


def _cell_worker(model_name, technique, queue):
    queue.put(run_cell(model_name, technique))


def _calibrated(model, x):
    """Sets BatchNormalization statistics from ``x``: with their initial values a fresh deep
    network's activations fade layer by layer and every image gets the same output, which
    would make the agreement figures empty."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(x, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    return model


def _first_line(err):
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    # kopt's errors say what and then how to fix it; the table keeps the what.
    return line.split(". Give each", 1)[0][:300]


def _where(err):
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "/kopt/" in f.filename or "/tflite_export/" in f.filename] or frames
    frame = ours[-1]
    return f"{os.path.relpath(frame.filename, _ROOT)}:{frame.lineno}"


def _cell_text(cell):
    if cell["status"] == "ok":
        if cell.get("fully_integer") is False:
            return "ok, float ops"
        if _left_unclustered(cell):
            return "ok, kernels left unclustered"
        return "ok"
    return cell["status"]


def _left_unclustered(cell):
    return cell.get("max_values_per_kernel", 0) > CLUSTERS


def _note(cell):
    if _left_unclustered(cell):
        return f"a kernel of the stripped model holds {cell['max_values_per_kernel']} values (K = {CLUSTERS})"
    return cell["detail"] or cell.get("float_ops")


def markdown_table(results):
    """The README table: one row per model, one column per technique, then the notes."""
    techniques = list(TECHNIQUES)
    lines = ["| model | " + " | ".join(techniques) + " |", "|---" * (len(techniques) + 1) + "|"]
    notes = []
    for model_name, cells in results["cells"].items():
        row = []
        for technique in techniques:
            cell = cells.get(technique)
            if cell is None:
                row.append("not run")
                continue
            text = _cell_text(cell)
            if text != "ok":
                notes.append(f"{len(notes) + 1}. {model_name} / {technique}: {_note(cell)}")
                text += f" ({len(notes)})"
            row.append(text)
        lines.append(f"| {model_name} | " + " | ".join(row) + " |")
    return "\n".join(lines + ([""] + notes if notes else []))


def _write_readme(table, command):
    body = f"Generated by {command}; do not edit by hand.\n\n{table}"
    markdown.write_section(os.path.join(_ROOT, "README.md"), "zoo_matrix", body)


def _define_flags():
    """Flags exist only when this script runs: kopt-optimize's --techniques lives in the same process in tests."""
    flags.DEFINE_list("models", list(zoo_models.MODELS), "Models of benchmarks.zoo_models to run.")
    flags.DEFINE_list("techniques", list(TECHNIQUES), "Techniques to run on each model.")
    flags.DEFINE_bool("readme", False, "Write the table into README.md between the zoo-matrix markers.")
    flags.DEFINE_string("output", _RESULTS, "JSON file for the results.")
    flags.DEFINE_bool(
        "rerun", False, "Run the selected cells even if --output has them; by default only missing cells run."
    )


def main(argv):
    del argv
    standalone.check_choices("models", flags.FLAGS.models, list(zoo_models.MODELS))
    standalone.check_choices("techniques", flags.FLAGS.techniques, list(TECHNIQUES))
    results = {"cells": {}, "command": "python -m benchmarks.zoo", "versions": {"keras": keras.__version__}}
    if os.path.isfile(flags.FLAGS.output):  # resumable: cells already measured are kept
        with open(flags.FLAGS.output, encoding="utf-8") as handle:
            results["cells"] = json.load(handle).get("cells", {})
    start = time.perf_counter()
    for model_name in flags.FLAGS.models:
        results["cells"].setdefault(model_name, {})
        for technique in flags.FLAGS.techniques:
            if not flags.FLAGS.rerun and technique in results["cells"][model_name]:
                continue
            cell = run_cell_isolated(model_name, technique)
            results["cells"][model_name][technique] = cell
            logging.info(
                "%s / %s: %s %s (%.0f s)", model_name, technique, cell["status"], cell["detail"], cell["seconds"]
            )
            atomic_write_json(flags.FLAGS.output, results)  # a crash of the run keeps what it measured
    results["minutes"] = round((time.perf_counter() - start) / 60, 1)
    atomic_write_json(flags.FLAGS.output, results)
    # Rows in the order of the model list, whatever order the cells were run in.
    results["cells"] = {name: results["cells"][name] for name in zoo_models.MODELS if name in results["cells"]}
    table = markdown_table(results)
    print(table)
    if flags.FLAGS.readme:
        seconds = sum(cell["seconds"] for cells in results["cells"].values() for cell in cells.values())
        _write_readme(table, f"`python -m benchmarks.zoo --readme` ({seconds / 60:.0f} min of cells on 2 cores)")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
