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


def test_check_wants_exactly_one_of_fraction_and_speedup():
    technique = get_technique("prune_structured")
    technique.check({"speedup": 1.7, "epochs": 1})
    for params in ({"epochs": 1}, {"fraction": 0.5, "speedup": 1.7, "epochs": 1}):
        with pytest.raises(ConfigError, match="exactly one of fraction"):
            technique.check(params)
    with pytest.raises(ConfigError) as err:
        technique.check({"speedup": 1.0, "epochs": 1})
    assert err.value.key == "prune_structured.speedup"


def test_a_speedup_prunes_where_the_layers_take_time(tmp_path):
    recipe = Recipe(
        epochs=1,
        export_dir=str(tmp_path),
        techniques=(TechniqueSpec("prune_structured", {"speedup": 1.5, "epochs": 1}),),
    )
    report = run(recipe)
    assert report["techniques"] == ["prune_structured"]
    assert report["optimized"]["params"] < report["baseline"]["params"]
    assert report["optimized"]["tflite_agreement"] == 1.0
