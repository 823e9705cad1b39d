"""One dotted override, ``stage.param``, for flags over files and for search trials."""

from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline.overrides import override_recipe
from kopt.pipeline.overrides import set_override


def test_a_stage_key_sets_every_stage_of_that_name():
    data = {"techniques": [{"name": "prune"}, {"name": "qat", "params": {}}, {"name": "prune", "params": {"x": 1}}]}
    assert set_override(data, "prune.epochs", 2) == ["techniques[0].params.epochs", "techniques[2].params.epochs"]
    assert data["techniques"][2]["params"] == {"x": 1, "epochs": 2}
    assert set_override(data, "search.tuner", "random") == ["search.tuner"] and data["search"] == {"tuner": "random"}


def test_override_recipe_leaves_the_original_alone():
    recipe = Recipe(techniques=(TechniqueSpec("prune", {"target_sparsity": 0.5}),), search={"tuner": "random"})
    changed = override_recipe(recipe, {"prune.target_sparsity": 0.9, "search.max_trials": 2, "optimizer": "adamw"})
    assert changed.techniques[0].params == {"target_sparsity": 0.9} and changed.optimizer == "adamw"
    assert changed.search == {"tuner": "random", "max_trials": 2}
    assert recipe.techniques[0].params == {"target_sparsity": 0.5} and recipe.search == {"tuner": "random"}
