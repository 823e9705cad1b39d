"""Clustering benchmark: prune 80% + cluster 16 + PCQAT int8 on MNIST, with kopt.

For every seed ``clustering_kopt.run`` trains the float CNN of the pruning
benchmark and makes the rows ``cluster``, ``prune_cluster`` (float32 files),
``cluster_cqat_int8`` and ``prune_cluster_pcqat_int8``. Every file is scored on
the whole 10,000-image MNIST test set with ``tflite_export.predict`` (accuracy,
and agreement with its Keras model's top-1 classes), sized with ``file_sizes``
(raw and gzip -9), and its weight constants read from the flatbuffer (most
distinct values in one weight tensor, share of zeros).

Targets (issue 8), judged on the worst seed: the PCQAT file's gzip size at most
0.08x the float file's, and its accuracy within 1 point of the float file's.

Writes ``<output_dir>/clustering.json`` and ``clustering.png`` and rewrites the
section between ``<!-- clustering:begin -->`` and ``<!-- clustering:end -->`` of
BENCHMARKS.md, printing it too. From the repository root::

    python -m benchmarks.clustering                    # 3 seeds
    python -m benchmarks.clustering --quick --seeds=0  # smoke run; writes clustering_quick.*
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import clustering_kopt  # noqa: E402
from benchmarks import harness  # noqa: E402 - defines the flags every benchmark shares.
from benchmarks import suite  # noqa: E402
from benchmarks.core.data import load_arrays  # noqa: E402
from benchmarks.pruning_settings import MODEL_DESCRIPTION  # noqa: E402

__all__ = ["SUITE", "judge", "main", "plot", "render_section", "run_benchmark", "score_file", "summarize"]

SECTION = "clustering"
TARGET_RATIO = 0.08
TARGET_ACCURACY_DROP = 0.01
_WEIGHT_OPS = {"CONV_2D": 1, "FULLY_CONNECTED": 1}
# --help lists the shared flags (--data, --seeds, --quick, ...) as this benchmark's own.
flags.adopt_module_key_flags(harness)


def score_file(path, x_test, y_test, keras_top1=None):
    """Accuracy, sizes and weight statistics of one ``.tflite`` file.

    With ``keras_top1`` (its Keras model's top-1 classes on ``x_test``) also the
    Keras model's accuracy and the share of images where the two agree.
    """
    import tflite_export
    from tflite_export.flatbuffer import TFLiteFlatbuffer

    predictions = np.argmax(tflite_export.predict(path, x_test), axis=-1)
    weights = [values for _, values in TFLiteFlatbuffer(path).weights_of(_WEIGHT_OPS)]
    sizes = tflite_export.file_sizes(path)
    score = {
        "accuracy": float(np.mean(predictions == y_test)),
        "bytes": sizes["bytes"],
        "gzip_bytes": sizes["gzip_bytes"],
        "max_unique_weights": max(len(np.unique(values)) for values in weights),
        "weight_sparsity": float(sum(np.count_nonzero(v == 0) for v in weights) / sum(v.size for v in weights)),
    }
    if keras_top1 is not None:
        score["keras_accuracy"] = float(np.mean(keras_top1 == y_test))
        score["agreement"] = float(np.mean(keras_top1 == predictions))
    return score


def summarize(runs):
    """Per row: mean and per-seed accuracy, gzip ratio to the float file, weight statistics."""
    summary = {}
    for row in clustering_kopt.ROWS:
        seeds = {seed: run["scores"][row] for seed, run in runs.items()}
        ratios = {seed: seeds[seed]["gzip_bytes"] / runs[seed]["scores"]["float32"]["gzip_bytes"] for seed in seeds}
        drops = {seed: runs[seed]["scores"]["float32"]["accuracy"] - seeds[seed]["accuracy"] for seed in seeds}
        summary[row] = {
            "accuracy_mean": float(np.mean([s["accuracy"] for s in seeds.values()])),
            "accuracy_drop_worst": float(max(drops.values())),
            "gzip_bytes_mean": float(np.mean([s["gzip_bytes"] for s in seeds.values()])),
            "gzip_ratio_mean": float(np.mean(list(ratios.values()))),
            "gzip_ratio_worst": float(max(ratios.values())),
            "max_unique_weights": int(max(s["max_unique_weights"] for s in seeds.values())),
            "weight_sparsity_min": float(min(s["weight_sparsity"] for s in seeds.values())),
            "per_seed": {seed: {**seeds[seed], "gzip_ratio": ratios[seed]} for seed in seeds},
        }
    return summary


def judge(summary):
    """The issue's two targets on the PCQAT row, each PASS or FAIL on the worst seed."""
    row = summary["prune_cluster_pcqat_int8"]
    return {
        "gzip_ratio": {
            "target": f"<= {TARGET_RATIO}x",
            "measured": row["gzip_ratio_worst"],
            "pass": row["gzip_ratio_worst"] <= TARGET_RATIO,
        },
        "accuracy_drop": {
            "target": f"<= {TARGET_ACCURACY_DROP * 100:g} point",
            "measured": row["accuracy_drop_worst"],
            "pass": row["accuracy_drop_worst"] <= TARGET_ACCURACY_DROP,
        },
    }


def render_section(document):
    """The BENCHMARKS.md section: settings, a table of every row and seed, the verdicts."""
    summary, targets = document["summary"], document["targets"]
    lines = [
        "## Clustering and collaborative optimization (kopt)",
        "",
        f"Command: `{document['command']}`. Data: {document['data']}. Seeds: {', '.join(document['seeds'])}. "
        f"Machine: {document['machine_line']}. Wall time: {document['wall_time_s'] / 60:.1f} min.",
        "",
        f"Model: {MODEL_DESCRIPTION}.",
        f"Settings: {document['settings_description']}",
        "Accuracy: the .tflite file on the 10,000 MNIST test images. Gzip: `gzip -9` of the file; ratio to the "
        "float32 file of the same seed. Distinct values: the most in one CONV_2D/FULLY_CONNECTED weight tensor "
        "of the file (int8 files per tensor: PCQAT/CQAT quantize clustered weights with one scale per tensor).",
        "",
        "| row | seed | accuracy | gzip bytes | gzip ratio | distinct weight values | weight zeros |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in clustering_kopt.ROWS:
        for seed, score in summary[row]["per_seed"].items():
            lines.append(
                f"| {row} | {seed} | {score['accuracy']:.4f} | {score['gzip_bytes']:,} | {score['gzip_ratio']:.3f}x | "
                f"{score['max_unique_weights']} | {score['weight_sparsity']:.1%} |"
            )
    lines += [
        "",
        "| row | mean accuracy | worst drop vs float | mean gzip ratio | worst gzip ratio |",
        "|---|---|---|---|---|",
    ]
    for row in clustering_kopt.ROWS:
        entry = summary[row]
        lines.append(
            f"| {row} | {entry['accuracy_mean']:.4f} | {entry['accuracy_drop_worst'] * 100:+.2f} pt | "
            f"{entry['gzip_ratio_mean']:.3f}x | {entry['gzip_ratio_worst']:.3f}x |"
        )
    lines += ["", "Targets (prune 80% + cluster 16 + PCQAT int8, worst seed):", ""]
    for name, verdict in targets.items():
        measured = verdict["measured"]
        shown = f"{measured:.3f}x" if name == "gzip_ratio" else f"{measured * 100:.2f} points"
        lines.append(f"- {name}: {verdict['target']}, measured {shown}: **{'PASS' if verdict['pass'] else 'FAIL'}**")
    if document["quick"]:
        lines += ["", "_Quick smoke run: not the benchmark's figures._"]
    return "\n".join(lines)


def plot(summary, path):
    """Accuracy against gzip ratio, one point per row and seed; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for row in clustering_kopt.ROWS:
        seeds = summary[row]["per_seed"].values()
        axis.scatter([s["gzip_ratio"] for s in seeds], [s["accuracy"] * 100 for s in seeds], label=row)
    axis.axvline(TARGET_RATIO, color="grey", linestyle="--", linewidth=1)
    axis.set_xscale("log")
    axis.set_xlabel("gzip size / float32 gzip size")
    axis.set_ylabel("TFLite test accuracy (%)")
    axis.set_title("kopt clustering on MNIST: size against accuracy")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def measure(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s):
    """Runs kopt's rows for every seed and scores their files; returns ``runs``, ``summary`` and ``targets``.

    No tfmot side here (``benchmarks/extras.py`` runs tfmot's clustering rows):
    ``tfmot`` and ``tfmot_timeout_s`` are not read.
    """
    del tfmot, tfmot_timeout_s  # kopt only.
    _, _, x_test, y_test = load_arrays(data)
    runs = {}
    for seed in seeds:
        run = clustering_kopt.run(
            data, seed, settings.as_dict(), os.path.join(workdir, f"seed{seed}"), log=logging.info
        )
        run["scores"] = {
            row: score_file(run["files"][row], x_test, y_test, np.load(run["keras_top1"][row]))
            for row in clustering_kopt.ROWS
        }
        runs[str(seed)] = run
        logging.info("seed %d: %s", seed, json.dumps(run["scores"]["prune_cluster_pcqat_int8"]))
    summary = summarize(runs)
    # As this document has always listed them: seeds as strings, the keys of ``runs``.
    return {"seeds": list(runs), "runs": runs, "summary": summary, "targets": judge(summary)}


def head(data, data_label, settings):
    """The document's head: the archive's name, and the settings."""
    del data_label  # The section names the archive by its file name.
    return {"data": os.path.basename(data), "settings": settings.as_dict(), "settings_description": settings.describe()}


SUITE = suite.Suite(
    name=SECTION,
    settings=suite.quick_or_full(clustering_kopt.ClusteringSettings),
    measure=measure,
    plot=lambda document, _, path: plot(document["summary"], path),
    render=lambda document, _: render_section(document),
    head=head,
    quick_seeds=None,
)
run_benchmark = SUITE.run_benchmark
main = suite.main_for(SUITE)


if __name__ == "__main__":
    app.run(main)
