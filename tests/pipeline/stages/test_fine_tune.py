"""A stage's training settings: its own params over the recipe's, errors keyed by stage."""

import pytest

from kopt import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline import get_technique
from kopt.pipeline.stages.fine_tune import check_fine_tune
from kopt.pipeline.stages.fine_tune import stage_training_config


def test_stage_inherits_optimizer_schedule_and_patience_but_not_warmup():
    recipe = Recipe(
        learning_rate=0.01,
        optimizer="nesterov",
        momentum=0.8,
        lr_schedule="cosine",
        warmup_epochs=2,
        early_stopping_patience=3,
    )
    config = stage_training_config(recipe, "prune", {"epochs": 4})
    assert (config.epochs, config.learning_rate, config.optimizer, config.momentum) == (4, 0.01, "nesterov", 0.8)
    assert (config.lr_schedule, config.early_stopping_patience, config.warmup_epochs) == ("cosine", 3, 0)
    assert stage_training_config(recipe, "distill", {"epochs": 4}, warmup=True).warmup_epochs == 2


def test_stage_params_override_and_momentum_follows_the_optimizer():
    recipe = Recipe(optimizer="nesterov", momentum=0.8)
    config = stage_training_config(
        recipe,
        "cluster",
        {"optimizer": "adam", "lr_schedule": "exponential", "learning_rate": 1e-4, "early_stopping_patience": None},
    )
    assert (config.optimizer, config.momentum, config.lr_schedule, config.learning_rate) == (
        "adam",
        None,
        "exponential",
        1e-4,
    )


def test_cluster_and_qat_fine_tune_at_a_tenth_of_the_float_rate():
    recipe = Recipe(learning_rate=0.01)
    assert get_technique("cluster").training_config(recipe, {}).learning_rate == pytest.approx(0.001)
    assert get_technique("qat").training_config(recipe, {}).learning_rate == pytest.approx(0.001)
    assert get_technique("prune").training_config(recipe, {}).learning_rate == pytest.approx(0.01)


@pytest.mark.parametrize(
    "params, key",
    [
        ({"epochs": 0}, "prune.epochs"),
        ({"optimizer": "lamb"}, "prune.optimizer"),
        ({"lr_schedule": "step"}, "prune.lr_schedule"),
        ({"warmup_epochs": 2, "epochs": 2}, "prune.warmup_epochs"),
    ],
)
def test_bad_stage_training_params_name_the_stage(params, key):
    with pytest.raises(ConfigError) as err:
        check_fine_tune("prune", params)
    assert err.value.key == key


def test_unknown_and_clashing_params_fail_the_recipe_check():
    prune = get_technique("prune")
    with pytest.raises(ConfigError, match="^prune.sparsty=0.5: unknown setting"):
        prune.check_recipe(Recipe(), {"sparsty": 0.5})
    with pytest.raises(ConfigError, match="^prune.momentum=0.5: only"):
        prune.check_recipe(Recipe(), {"target_sparsity": 0.5, "momentum": 0.5})
