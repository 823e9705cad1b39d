"""The prune_structured stage: a smaller model, fine-tuned and exported."""

import pytest

from kopt import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import get_technique
from kopt.pipeline import run


@pytest.mark.slow
def test_structured_then_magnitude_pruning_compose(tmp_path):
    recipe = Recipe(
        epochs=2,
        export_dir=str(tmp_path),
        techniques=(
            TechniqueSpec("prune_structured", {"fraction": 0.5, "epochs": 2}),
            TechniqueSpec("prune", {"target_sparsity": 0.5, "epochs": 2}),
        ),
    )
    report = run(recipe)
    baseline, optimized = report["baseline"], report["optimized"]
    assert report["techniques"] == ["prune_structured", "prune"]
    # Half the channels of every hidden layer: roughly a quarter of the weights remain.
    assert optimized["params"] < 0.4 * baseline["params"]
    assert optimized["tflite_bytes"] < 0.4 * baseline["tflite_bytes"]
    assert optimized["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert optimized["tflite_agreement"] == 1.0


@pytest.mark.parametrize("fraction", [None, 0, 1, 1.5, "half"])
def test_check_rejects_bad_fractions(fraction):
    with pytest.raises(ConfigError) as err:
        get_technique("prune_structured").check({"fraction": fraction, "epochs": 1})
    assert err.value.key == "prune_structured.fraction"
