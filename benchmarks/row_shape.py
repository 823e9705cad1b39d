"""The shape of a summary row and the helpers every reader in ``benchmarks/run_rows.py`` shares.

See :mod:`benchmarks.run_rows` for the row and record layout. Nothing here trains
or imports TensorFlow.

Example:

>>> record(tflite_accuracy=0.98, gzip_bytes=None)
{'tflite_accuracy': 0.98}
"""

__all__ = [
    "CLUSTER_ROWS", "FLOAT_SOURCES", "FRAMEWORK_ORDER", "GROUPS", "NOT_RUN", "cluster_techniques",
    "framework_runs", "layout_note", "failed_row", "make_row", "median", "per_seed", "record",
]  # fmt: skip

NOT_RUN = "not run"
FRAMEWORK_ORDER = ("kopt", "tfmot", "keras")
# Row groups in table order; within a group, kopt before tfmot before Keras.
GROUPS = (
    "float",
    "prune",
    "2_4",
    "structured",
    "qat_float",
    "qat",
    "ptq",
    "keras_int8",
    "cluster",
    "prune_cluster",
    "cluster_cqat_int8",
    "prune_cluster_pcqat_int8",
    "distill_scratch",
    "distill",
)
# Which benchmark's float model is the baseline row, first found first.
FLOAT_SOURCES = ("extras", "quantization", "pruning", "clustering")
CLUSTER_ROWS = ("cluster", "prune_cluster", "cluster_cqat_int8", "prune_cluster_pcqat_int8")


def cluster_techniques(settings):
    """``{row: label}`` of the clustering rows, from ``ClusteringSettings.as_dict()``."""
    clusters, pruned = f"{settings['number_of_clusters']} clusters", f"pruning {settings['target_sparsity']:.0%}"
    return {
        "cluster": f"clustering, {clusters}",
        "prune_cluster": f"{pruned} + clustering, {clusters}",
        "cluster_cqat_int8": f"clustering, {clusters} + CQAT int8",
        "prune_cluster_pcqat_int8": f"{pruned} + clustering, {clusters} + PCQAT int8",
    }


def layout_note(settings):
    """The clustering files' layout, where it is not the default one."""
    return "; file: batch 1, strings stripped" if settings.get("fixed_batch_and_stripped_strings") else ""


def record(**values):
    """One seed's figures, leaving out those that are ``None``."""
    return {key: value for key, value in values.items() if value is not None}


def make_row(
    key, group, technique, framework, document, epochs, seeds, *, note="", reason=None, rank=0.0, baseline="float"
):
    """A row; it ran if any seed has figures, otherwise it says why not.

    ``rank`` orders rows of one group (the sparsity of pruning rows);
    ``baseline`` is the group of the float row of the same model.
    """
    ran = any("error" not in figures for figures in seeds.values())
    if not ran and reason is None:
        errors = sorted({figures["error"] for figures in seeds.values() if "error" in figures})
        reason = "; ".join(errors) or "no seed ran"
    return {
        "key": key,
        "group": group,
        "rank": rank,
        "technique": technique,
        "framework": framework,
        "benchmark": document["benchmark"],
        "command": document.get("command", ""),
        "epochs": epochs,
        "note": note,
        "status": "ran" if ran else NOT_RUN,
        "reason": None if ran else reason,
        "seeds": seeds,
        "baseline": baseline,
    }


def failed_row(benchmark, why):
    """The "not run" row of a benchmark that raised ``why``."""
    return make_row(
        f"{benchmark}_failed", "failed", f"benchmarks.{benchmark}", "kopt", {"benchmark": benchmark}, "", {}, reason=why
    )


def median(stats):
    """The median step time of a timing entry, or ``None``."""
    return (stats or {}).get("step_time_s_median")


def framework_runs(document, framework):
    """``(runs, reason)`` of a document with a ``frameworks`` entry (pruning's form)."""
    entry = document.get("frameworks", {}).get(framework, {})
    reason = None if entry.get("status") == "ran" else entry.get("reason") or NOT_RUN
    return entry.get("runs") or {}, reason


def per_seed(runs, figures_of):
    """``{seed: figures_of(run)}``, or the seed's error."""
    seeds = {}
    for seed, run in runs.items():
        seeds[str(seed)] = {"error": run["error"]} if "error" in run else figures_of(run)
    return seeds
