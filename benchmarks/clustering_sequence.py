"""Clustering on sequence models: LSTM, GRU and a Transformer encoder on MNIST, against a control.

Usage::

    python -m benchmarks.clustering_sequence              # LSTM, GRU, TransformerEncoder, seeds 0,1,2
    python -m benchmarks.clustering_sequence --quick      # a minute: a smoke run, not figures

Per model and seed: the classifier of ``benchmarks.sequence_agreement`` (an LSTM or
GRU of 64 units over the 28 rows of a digit; a Transformer encoder over 49 patch
tokens) is trained from scratch for ``--float_epochs`` (Adam 1e-3, batch 64) on the
22,699 training digits of ``../shared/data/mnist-22k.npz``. From that float model:

* ``control``: trained ``--finetune_epochs`` more at the clustering rate (Adam from
  1e-4, cosine to 0), nothing clustered: what the extra epochs alone give;
* ``cluster 16``: ``kopt.clustering.cluster_weights(model, 16)`` (k-means++ starts)
  of the whole model: every kernel, the recurrent and attention kernels included,
  then the same fine-tuning, stripped;
* ``cluster 16 + cqat``: that stripped model through cluster-preserving QAT
  (``quantize_model(..., scheme="cqat")``), one epoch at Adam 1e-5, an int8 file.

Each model is converted (float32; int8 for the CQAT row) and scored on the 10,000
test digits in LiteRT. Sizes: the file raw and gzipped (level 9), and its gzip
ratio to the float model's file. *Values*: the most distinct values any kernel
or embedding table holds in the stripped clustered model, or as the CQAT model
quantizes it. Drop: the control's accuracy minus the row's, in points.
Results: ``benchmarks/results/clustering_sequence.json``, a PNG beside it and the
``clustering_sequence`` section of BENCHMARKS.md.
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
from kopt import clustering  # noqa: E402
from kopt import quantization  # noqa: E402

__all__ = ["measure", "plot", "report"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("LSTM", "GRU", "TransformerEncoder")
CLUSTERS = 16
_FLOAT_RATE, _CLUSTER_RATE, _CQAT_RATE = 1e-3, 1e-4, 1e-5


_CLUSTERED = ("kernel", "embeddings")  # the weights clustering shares; biases (a GRU's is 2-D) stay float


def _most_values(pairs):
    """The most distinct values of any clustered weight among ``(variable, array)`` pairs."""
    return max((len(np.unique(array)) for variable, array in pairs if variable.path.endswith(_CLUSTERED)), default=0)


def measure(name, seed, settings, workdir):
    """The rows of one model and seed: float, control, clustered and cluster-preserving QAT."""
    x_train, y_train, x_test, y_test = settings.get("data") or sequence_agreement._data(name)
    keras.utils.set_random_seed(seed)
    dense = sequence_agreement.train_classifier(
        sequence_agreement.MODELS[name](), x_train, y_train, settings["float_epochs"], _FLOAT_RATE, False
    )
    finetune = settings["finetune_epochs"]
    control = keras.models.clone_model(dense)
    control.set_weights(dense.get_weights())
    sequence_agreement.train_classifier(control, x_train, y_train, finetune, _CLUSTER_RATE, True)
    wrapped = clustering.cluster_weights(dense, number_of_clusters=CLUSTERS)
    clustered = clustering.strip_clustering(
        sequence_agreement.train_classifier(wrapped, x_train, y_train, finetune, _CLUSTER_RATE, True)
    )
    cqat = sequence_agreement.train_classifier(
        quantization.quantize_model(clustered, scheme="cqat"), x_train, y_train, 1, _CQAT_RATE, False
    )
    variants = {
        "float": (dense, "float32", None),
        "control": (control, "float32", None),
        f"cluster {CLUSTERS}": (clustered, "float32", _most_values([(w, w.numpy()) for w in clustered.weights])),
        f"cluster {CLUSTERS} + cqat": (cqat, "int8", _most_values(_quantized_weights(cqat))),
    }
    rows = []
    for variant, (model, mode, values) in variants.items():
        path = os.path.join(workdir, f"{name}-{seed}-{variant.replace(' ', '_').replace('+', 'and')}.tflite")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the static-batch note of a recurrent model
            tflite_export.convert(model, path, mode=mode)
        accuracy = float(np.mean(np.argmax(tflite_export.predict(path, x_test), -1) == y_test))
        sizes = tflite_export.file_sizes(path)
        rows.append({"model": name, "seed": seed, "variant": variant, "accuracy": round(accuracy, 4),
                     "kib": round(sizes["bytes"] / 1024, 1), "gzip_kib": round(sizes["gzip_bytes"] / 1024, 1),
                     "values": values})  # fmt: skip
    float_row, control_row = rows[0], rows[1]
    for row in rows:
        row["gzip_ratio"] = round(row["gzip_kib"] / float_row["gzip_kib"], 3)
        row["drop"] = round(100 * (control_row["accuracy"] - row["accuracy"]), 2)
        logging.info("%s seed %d %s: %.2f%%, gzip x%.3f", name, seed, row["variant"], 100 * row["accuracy"],
                     row["gzip_ratio"])  # fmt: skip
    return rows


def _quantized_weights(model):
    return [
        pair
        for layer in model.layers
        if hasattr(layer, "quantized_weights")
        for pair in zip(layer.layer.weights, layer.quantized_weights(), strict=True)
    ]


def report(document):
    """The BENCHMARKS.md section: per model and variant the mean over seeds, then every seed."""
    settings = document["settings"]
    lines = [
        "## Clustering on sequence models: LSTM, GRU and a Transformer encoder on MNIST",
        "",
        f"Written by `{document['command']}` on {document['machine']}; {document['elapsed_min']} min. "
        "The classifiers of `sequence_agreement` (LSTM/GRU: 64 units over 28 rows of 28 pixels; Transformer "
        "encoder: 49 patch tokens, embedding 32, 4 heads of 8, feed-forward 64), trained "
        f"{settings['float_epochs']} epochs (Adam 1e-3, batch 64) on the 22,699 MNIST training digits. "
        f"`control`: {settings['finetune_epochs']} more epochs (Adam from 1e-4, cosine to 0), nothing clustered. "
        f"`cluster {CLUSTERS}`: `cluster_weights(model, {CLUSTERS})` (k-means++) of the whole model, the "
        "recurrent and attention kernels included, the same epochs, stripped. "
        f'`+ cqat`: then `quantize_model(..., scheme="cqat")`, 1 epoch at Adam 1e-5, int8 file. Accuracy: '
        "each file on the 10,000 test digits in LiteRT; drop: the control's minus the row's, in points. gzip: "
        "level 9, ratio to the float model's file. Values: the most distinct values in any kernel or embedding "
        "table (stripped model; for CQAT, as its QAT model quantizes them).",
        "",
        "| model | variant | seeds | accuracy % (mean) | drop from the control (mean / worst) | KiB | gzip KiB "
        "| gzip ratio (mean) | values |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, variant in dict.fromkeys((r["model"], r["variant"]) for r in document["rows"]):
        rows = [r for r in document["rows"] if r["model"] == model and r["variant"] == variant]
        drops = [r["drop"] for r in rows]
        values = max((r["values"] for r in rows if r["values"] is not None), default=None)
        lines.append(
            f"| {model} | {variant} | {len(rows)} | {100 * np.mean([r['accuracy'] for r in rows]):.2f} | "
            f"{_points(np.mean(drops))} / {_points(max(drops))} | {rows[0]['kib']} | {rows[0]['gzip_kib']} | "
            f"{np.mean([r['gzip_ratio'] for r in rows]):.3f} | {'-' if values is None else values} |"
        )
    lines += [
        "",
        "| model | seed | variant | accuracy % | drop | gzip KiB | gzip ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in document["rows"]:
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['variant']} | {100 * r['accuracy']:.2f} | {r['drop']:.2f} "
            f"| {r['gzip_kib']} | {r['gzip_ratio']} |"
        )
    return "\n".join(lines)


def _points(value):
    return f"{round(float(value), 2) + 0.0:.2f}"  # + 0.0: a mean of -0.003 reads 0.00, not -0.00


def plot(document, path):
    """Accuracy against gzip ratio, one panel per model, every seed's point."""
    return pruning_plot.accuracy_panels(
        document["rows"],
        "gzip_ratio",
        "gzipped file / float file",
        path,
        "Clustered sequence models: accuracy against gzipped size, MNIST",
    )


def main(argv):
    del argv
    started = time.time()
    quick = flags.FLAGS.quick
    standalone.check_choices("models", flags.FLAGS.models, list(MODELS))
    settings = {
        "float_epochs": 1 if quick else flags.FLAGS.float_epochs,
        "finetune_epochs": 1 if quick else flags.FLAGS.finetune_epochs,
    }
    seeds = [0] if quick else [int(seed) for seed in flags.FLAGS.seeds]
    start_machine = machine.describe_machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kopt-clustering-sequence-") as workdir:
        for name in flags.FLAGS.models:
            if quick:
                data = sequence_agreement._data(name)
                settings["data"] = (data[0][:640], data[1][:640], data[2][:200], data[3][:200])
            for seed in seeds:
                rows += measure(name, seed, settings, workdir)
    settings.pop("data", None)
    document = standalone.stamp({}, "benchmarks.clustering_sequence", start_machine)
    document.update(settings=settings, seeds=seeds, rows=rows, elapsed_min=round((time.time() - started) / 60, 1))
    standalone.publish_seeded_run(
        document, "clustering_sequence", quick=quick, output_dir=flags.FLAGS.output_dir,
        markdown_path=flags.FLAGS.markdown, report=report, plot=plot,
    )  # fmt: skip


if __name__ == "__main__":
    flags.DEFINE_list("models", list(MODELS), "Classifiers of sequence_agreement to cluster.")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; each trains its own float model.")
    flags.DEFINE_integer("float_epochs", 10, "Float training epochs.")
    flags.DEFINE_integer("finetune_epochs", 3, "Clustering epochs (and the control's).")
    flags.DEFINE_bool("quick", False, "A smoke run in a minute (640 digits, 1 epoch each, seed 0): not figures.")
    flags.DEFINE_string("output_dir", os.path.join(_ROOT, "benchmarks", "results"), "Where the JSON and PNG go.")
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "Markdown file whose section is rewritten.")
    app.run(main)
