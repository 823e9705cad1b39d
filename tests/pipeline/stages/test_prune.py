"""The prune stage inside the pipeline: exact sparsity on the stripped, exported model."""

import pytest

from kopt import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import get_technique
from kopt.pipeline import run
from kopt.pruning import check_m_by_n
from kopt.pruning import sparsity_report


def _run(tmp_path, params):
    recipe = Recipe(epochs=2, export_dir=str(tmp_path), techniques=(TechniqueSpec("prune", {"epochs": 2, **params}),))
    return run(recipe)


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["polynomial", "constant"])
def test_prune_reaches_the_target_on_the_exported_file(tmp_path, schedule):
    report = _run(tmp_path, {"target_sparsity": 0.75, "schedule": schedule})
    assert report["techniques"] == ["prune"]
    assert report["optimized"]["sparsity"] == pytest.approx(0.75, abs=0.005)
    assert report["optimized"]["tflite_agreement"] == 1.0
    assert report["optimized"]["tflite_gzip_bytes"] < 0.5 * report["baseline"]["tflite_gzip_bytes"]
    in_file = sparsity_report(report["files"]["optimized_tflite"])["overall"]["sparsity"]
    assert in_file > 0.7  # kernels dominate the file's weight tensors


@pytest.mark.slow
def test_m_by_n_alone_prunes_with_the_pattern(tmp_path):
    report = _run(tmp_path, {"sparsity_m_by_n": [2, 4]})
    assert report["optimized"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert check_m_by_n(report["files"]["optimized_tflite"], m=2, n=4)["ok"]


@pytest.mark.slow
def test_sparse_weights_store_the_file_sparsely_and_report_xnnpack_eligibility(tmp_path):
    report = _run(tmp_path, {"target_sparsity": 0.9, "schedule": "constant", "sparse_weights": True})
    from tflite_export.flatbuffer import TFLiteFlatbuffer

    ops = [op.name for op in TFLiteFlatbuffer(report["files"]["optimized_tflite"]).ops]
    assert "DENSIFY" in ops and report["optimized"]["tflite_agreement"] == 1.0
    check = report["optimized"]["sparse_inference"]
    assert check["sparse_tensors"] >= 1 and not check["eligible"]  # the small CNN has no stem
    assert "sparse_inference" not in report["baseline"]


def test_the_xnnpack_policy_refuses_a_model_it_cannot_run_naming_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="PruneForLatencyOnXNNPack") as err:
        _run(tmp_path, {"target_sparsity": 0.8, "policy": "xnnpack_sparse", "epochs": 1})
    assert err.value.key == "prune.policy"


@pytest.mark.parametrize(
    "params, key",
    [
        ({}, "prune.target_sparsity"),
        ({"target_sparsity": 0.0}, "prune.target_sparsity"),
        ({"target_sparsity": 1.0}, "prune.target_sparsity"),
        ({"target_sparsity": 0.8, "schedule": "cubic"}, "prune.schedule"),
        ({"sparsity_m_by_n": [4, 2]}, "prune.sparsity_m_by_n"),
        ({"sparsity_m_by_n": [2]}, "prune.sparsity_m_by_n"),
        ({"target_sparsity": 0.8, "sparsity_m_by_n": [2, 4]}, "prune.target_sparsity"),
        ({"target_sparsity": 0.5, "epochs": 0}, "prune.epochs"),
        ({"target_sparsity": 0.5, "learning_rate": -1.0}, "prune.learning_rate"),
        ({"target_sparsity": 0.5, "policy": "xnnpack"}, "prune.policy"),
        ({"target_sparsity": 0.5, "sparse_weights": "yes"}, "prune.sparse_weights"),
    ],
)
def test_check_names_the_bad_param(params, key):
    with pytest.raises(ConfigError) as err:
        get_technique("prune").check(params)
    assert err.value.key == key


def test_agreeing_sparsity_and_pattern_are_accepted():
    get_technique("prune").check({"target_sparsity": 0.5, "sparsity_m_by_n": [2, 4]})
