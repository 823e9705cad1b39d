"""Tests for benchmarks/sparse_inference.py on its tiny case: the files it times are what it says."""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import pytest  # noqa: E402

from benchmarks import sparse_inference  # noqa: E402


@pytest.mark.slow
def test_tiny_case_prunes_and_only_the_sparse_file_is_eligible(tmp_path):
    row = sparse_inference.measure("tiny", rounds=1, sparsities=(0.9,))  # one sparsity: the suite's time
    files = {entry["file"]: entry for entry in row["files"]}
    assert list(files) == ["unpruned", "pruned_90%_dense", "pruned_90%_sparse"]
    for sparsity in (0.9,):
        sparse = files[f"pruned_{sparsity:.0%}_sparse"]
        assert sparse["eligible"], sparse["reasons"]
        assert abs(sparse["zero_fraction"] - sparsity) < 0.01
        assert sparse["kib"] < files[f"pruned_{sparsity:.0%}_dense"]["kib"]
        assert sparse["max_abs_difference"] < 1e-4  # storage alone changes nothing
        assert not files[f"pruned_{sparsity:.0%}_dense"]["eligible"]
    document = {
        "command": "c",
        "machine": "m",
        "rounds": 1,
        "sparsities": list(sparse_inference.SPARSITIES),
        "rows": [row],
        "keras_mobilenet_v2_policy": {"accepted": False, "message": "no"},
    }
    text = sparse_inference.report(document)
    assert "| tiny | 64x64 | pruned_90%_sparse |" in text and "refused: no" in text
    assert "not recorded" in text  # a document from before the CPU check
    document["this_cpu"] = {"sparse_kernels": False, "reason": "x86_64 with AVX: dense here"}
    assert "This run's CPU (`tflite_export.xnnpack_sparse_cpu`): x86_64 with AVX: dense here." in (
        sparse_inference.report(document)
    )
    assert os.path.getsize(sparse_inference.plot(document, str(tmp_path / "p.png"))) > 0


def test_keras_mobilenet_v2_is_refused_by_the_policy_with_the_layer_named():
    result = sparse_inference.keras_mobilenet_v2_policy()
    assert result == {"accepted": False, "message": result["message"]} and "block_1_depthwise" in result["message"]
