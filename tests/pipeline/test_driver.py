"""The driver end to end on digits, with a technique plugged in through the registry."""

import json
import os

import numpy as np
import pytest

from kopt import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline import Technique
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import register_technique
from kopt.pipeline import run

REPORT_KEYS = {"keras_accuracy", "tflite_accuracy", "tflite_bytes", "tflite_gzip_bytes", "params", "sparsity"}


@register_technique
class ZeroSmallestKernels(Technique):
    """Zeros the smallest half of every kernel; exported as int8."""

    name = "test_zero_smallest"
    export_mode = "int8"

    def check(self, params):
        if not 0 <= params.get("fraction", 0.5) < 1:
            raise ConfigError("fraction", params["fraction"], "must be in [0, 1)")

    def apply(self, model, context, params):
        for weight in model.weights:
            if len(weight.shape) >= 2:
                values = weight.numpy()
                cutoff = np.quantile(np.abs(values), params.get("fraction", 0.5))
                weight.assign(np.where(np.abs(values) <= cutoff, 0.0, values))
        return model


@pytest.mark.slow
def test_run_trains_applies_techniques_exports_and_reports(tmp_path):
    export_dir = tmp_path / "out"
    export_dir.mkdir()
    (export_dir / "keep.txt").write_text("user file")
    report_path = str(tmp_path / "report.json")
    recipe = Recipe(
        epochs=3,
        export_dir=str(export_dir),
        report=report_path,
        techniques=(TechniqueSpec("test_zero_smallest", {"fraction": 0.5}),),
    )
    result = run(recipe)

    assert result["techniques"] == ["test_zero_smallest"]
    assert REPORT_KEYS <= set(result["baseline"]) and REPORT_KEYS <= set(result["optimized"])
    assert result["baseline"]["keras_accuracy"] > 0.5  # 3 epochs on digits learns something
    assert result["baseline"]["tflite_agreement"] == 1.0
    assert result["baseline"]["sparsity"] < 0.01
    assert result["optimized"]["sparsity"] >= 0.5
    assert result["optimized"]["tflite_mode"] == "int8"
    assert result["optimized"]["tflite_bytes"] < result["baseline"]["tflite_bytes"] / 2
    assert (export_dir / "keep.txt").read_text() == "user file"
    for name in ("baseline.keras", "optimized.keras", "baseline.tflite", "optimized.tflite"):
        assert (export_dir / name).stat().st_size > 0
    with open(report_path) as f:
        written = json.load(f)
    assert written["baseline"] == result["baseline"] and written["dataset"]["name"] == "digits"
    assert written["recipe"]["techniques"] == [{"name": "test_zero_smallest", "params": {"fraction": 0.5}}]
    assert os.path.isfile(report_path.replace(".json", ".png"))


def test_bad_technique_params_fail_before_training(tmp_path):
    recipe = Recipe(
        export_dir=str(tmp_path / "out"), techniques=(TechniqueSpec("test_zero_smallest", {"fraction": 2}),)
    )
    with pytest.raises(ConfigError, match="fraction=2"):
        run(recipe)
    assert not (tmp_path / "out").exists()


def test_unknown_technique_fails_before_training(tmp_path):
    with pytest.raises(ConfigError, match="unknown technique"):
        run(Recipe(export_dir=str(tmp_path / "out"), techniques=(TechniqueSpec("nope"),)))
    assert not (tmp_path / "out").exists()


def test_strategy_settings_fail_before_training(tmp_path):
    with pytest.raises(ConfigError, match="num_gpus=2: applies to --strategy=mirrored only"):
        run(Recipe(export_dir=str(tmp_path / "out"), strategy="one_device", num_gpus=2))
    assert not (tmp_path / "out").exists()


def test_run_under_a_strategy_trains_in_its_scope(tmp_path):
    # One replica on a CPU-only machine; the multi-worker run is in tests/distribute.
    result = run(Recipe(epochs=1, export_dir=str(tmp_path / "out"), strategy="mirrored"))
    assert result["recipe"]["strategy"] == "mirrored"
    assert result["baseline"]["tflite_agreement"] == 1.0
    assert result["baseline"]["keras_accuracy"] > 0.3


@pytest.mark.slow
def test_mixed_precision_run_prunes_and_quantizes_and_exports_as_without_it(tmp_path):
    from tflite_export import inspect

    techniques = (
        TechniqueSpec("prune", {"target_sparsity": 0.5, "epochs": 1}),
        TechniqueSpec("qat", {"epochs": 1, "preserve": ["sparsity"]}),
    )
    result = run(Recipe(epochs=1, mixed_precision="mixed_bfloat16", export_dir=str(tmp_path), techniques=techniques))
    assert result["recipe"]["mixed_precision"] == "mixed_bfloat16"
    baseline = inspect(result["files"]["baseline_tflite"])
    assert {t["dtype"] for t in baseline["tensors"] if t["parameter"]} == {"float32"}
    assert result["baseline"]["tflite_agreement"] == 1.0
    optimized = result["optimized"]
    assert optimized["tflite_mode"] == "int8" and optimized["tflite_agreement"] >= 0.97
    assert optimized["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert "bfloat16" not in {t["dtype"] for t in inspect(optimized["tflite_path"])["tensors"]}
