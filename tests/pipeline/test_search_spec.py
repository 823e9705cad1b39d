"""The search block: validation against the recipe, the default space, trial recipes."""

import pytest

from kopt import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline.search_spec import apply_values
from kopt.pipeline.search_spec import space_of

PRUNE = (TechniqueSpec("prune", {"target_sparsity": 0.8}),)


def _recipe(search, techniques=PRUNE):
    return Recipe(techniques=techniques, search=search)


def test_default_space_varies_compression_only_under_a_size_budget():
    plain = space_of({}, _recipe({}))
    assert {"learning_rate", "optimizer", "lr_schedule"} <= set(plain)
    assert "prune.target_sparsity" not in plain
    budget = space_of({"size_budget_kib": 40}, _recipe({"size_budget_kib": 40}))
    assert budget["prune.target_sparsity"] == {"min": 0.5, "max": 0.95}
    distill = space_of({}, _recipe({}, (TechniqueSpec("distill", {}),)))
    assert "distill.temperature" in distill and "distill.alpha" in distill


@pytest.mark.parametrize(
    "search, key",
    [
        ({"tuner": "grid"}, "search.tuner"),
        ({"max_trials": 0}, "search.max_trials"),
        ({"size_budget_kib": -1}, "search.size_budget_kib"),
        ({"trials": 3}, "search.trials"),
        ({"space": {"dropout": [0.1]}}, "search.space.dropout"),
        ({"space": {"cluster.number_of_clusters": [8]}}, "search.space.cluster.number_of_clusters"),
        ({"space": {"prune.target_sparsity": {"min": 0.5, "max": 1.2}}}, "search.space.prune.target_sparsity"),
        ({"space": {"learning_rate": {"min": 0.0, "max": 0.1, "sampling": "log"}}}, "search.space.learning_rate"),
        ({"space": {"optimizer": ["adam", "lamb"]}}, "search.space.optimizer"),
        ({"space": {"learning_rate": {"low": 1}}}, "search.space.learning_rate.low"),
        ({"space": {"learning_rate": []}}, "search.space.learning_rate"),
    ],
)
def test_bad_search_blocks_name_the_key(search, key):
    with pytest.raises(ConfigError) as err:
        _recipe(search).validate()
    assert err.value.key == key


def test_search_needs_a_validation_split():
    assert _recipe({}).resolved().validation_split == 0.1
    with pytest.raises(ConfigError, match="validation_split=0"):
        Recipe(search={}, validation_split=0.0).validate()


def test_trial_values_set_top_keys_and_stage_params_and_drop_the_search():
    trial = apply_values(_recipe({"max_trials": 3}), {"optimizer": "adamw", "prune.target_sparsity": 0.6})
    assert trial.optimizer == "adamw" and trial.search is None
    assert trial.techniques[0].params == {"target_sparsity": 0.6}
