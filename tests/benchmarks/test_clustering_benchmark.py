"""The clustering benchmark's pure pieces on made-up scores, and a tiny end-to-end run."""

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import clustering  # noqa: E402
from benchmarks import clustering_kopt  # noqa: E402


def _scores(accuracy, gzip_bytes):
    return {
        "accuracy": accuracy,
        "bytes": 2 * gzip_bytes,
        "gzip_bytes": gzip_bytes,
        "max_unique_weights": 16,
        "weight_sparsity": 0.8,
    }


def _runs(pcqat_bytes, pcqat_accuracy):
    rows = {row: _scores(0.98, 20_000) for row in clustering_kopt.ROWS}
    rows["float32"] = _scores(0.985, 80_000)
    return {
        "0": {"scores": {**rows, "prune_cluster_pcqat_int8": _scores(pcqat_accuracy, pcqat_bytes)}},
        "1": {"scores": {**rows, "prune_cluster_pcqat_int8": _scores(0.984, 6_000)}},
    }


@pytest.mark.parametrize(
    "pcqat_bytes, pcqat_accuracy, ratio_pass, accuracy_pass",
    [(6_000, 0.980, True, True), (7_000, 0.980, False, True), (6_000, 0.970, True, False)],
)
def test_targets_are_judged_on_the_worst_seed(pcqat_bytes, pcqat_accuracy, ratio_pass, accuracy_pass):
    summary = clustering.summarize(_runs(pcqat_bytes, pcqat_accuracy))
    targets = clustering.judge(summary)
    assert targets["gzip_ratio"]["pass"] is ratio_pass
    assert targets["accuracy_drop"]["pass"] is accuracy_pass
    assert summary["prune_cluster_pcqat_int8"]["gzip_ratio_worst"] == pytest.approx(pcqat_bytes / 80_000)


def test_section_reports_every_seed_and_verdict():
    summary = clustering.summarize(_runs(7_000, 0.98))
    document = {
        "command": "python -m benchmarks.clustering",
        "data": "mnist.npz",
        "seeds": ["0", "1"],
        "machine_line": "x",
        "wall_time_s": 60.0,
        "settings_description": clustering_kopt.ClusteringSettings().describe(),
        "summary": summary,
        "targets": clustering.judge(summary),
        "quick": False,
    }
    section = clustering.render_section(document)
    # One line per seed, one in the summary table.
    assert section.count("| prune_cluster_pcqat_int8 | ") == 3
    assert "**FAIL**" in section and "**PASS**" in section
    assert "Adam 1e-05" in section


@pytest.mark.slow
def test_tiny_run_writes_json_png_and_section(mnist_npz, tmp_path):
    settings = clustering_kopt.ClusteringSettings(
        dense_epochs=1,
        max_train_examples=600,
        prune_epochs=1,
        prune_end_epochs=1,
        cluster_epochs=1,
        number_of_clusters=4,
    )
    document = clustering.run_benchmark(
        mnist_npz,
        [0],
        settings,
        output_dir=str(tmp_path),
        markdown_path=str(tmp_path / "B.md"),
        command="test",
        quick=True,
    )
    assert (tmp_path / "clustering_quick.json").stat().st_size > 0
    assert (tmp_path / "clustering_quick.png").stat().st_size > 0
    assert "<!-- clustering:begin -->" in (tmp_path / "B.md").read_text()
    pcqat = document["summary"]["prune_cluster_pcqat_int8"]
    assert pcqat["max_unique_weights"] <= 4 and pcqat["weight_sparsity_min"] >= 0.79
    # Each row's file is scored against its Keras model, and each row's own stage is timed.
    run = document["runs"]["0"]
    assert run["scores"]["cluster"]["agreement"] > 0.9 and 0 <= run["scores"]["cluster"]["keras_accuracy"] <= 1
    assert run["steps"]["prune_cluster_pcqat_int8"]["timed_steps"] > 0 and run["plain_finetune"]["timed_steps"] > 0
