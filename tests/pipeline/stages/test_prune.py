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
    ],
)
def test_check_names_the_bad_param(params, key):
    with pytest.raises(ConfigError) as err:
        get_technique("prune").check(params)
    assert err.value.key == key


def test_agreeing_sparsity_and_pattern_are_accepted():
    get_technique("prune").check({"target_sparsity": 0.5, "sparsity_m_by_n": [2, 4]})
