"""Recipe files: YAML and JSON, strict key-path errors, a report's recipe read back."""

import json

import pytest

from kopt import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import read_recipe_file
from kopt.pipeline import recipe_from_dict
from kopt.pipeline.overrides import set_override

YAML = """
dataset: digits
epochs: 2
learning_rate: 1e-3          # YAML 1.1 would read this as a string
optimizer: nesterov
momentum: 0.8
lr_schedule: cosine
warmup_epochs: 1
mixed_precision: mixed_bfloat16
techniques:
  - name: prune
    params: {target_sparsity: 0.8, epochs: 2, lr_schedule: plateau}
  - name: qat
    params: {epochs: 1, preserve: [sparsity]}
"""


def test_yaml_file_becomes_the_recipe_it_describes(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(YAML)
    recipe = recipe_from_dict(read_recipe_file(str(path)))
    assert recipe.learning_rate == 1e-3 and isinstance(recipe.learning_rate, float)
    assert (recipe.optimizer, recipe.momentum, recipe.lr_schedule, recipe.warmup_epochs) == (
        "nesterov",
        0.8,
        "cosine",
        1,
    )
    assert recipe.mixed_precision == "mixed_bfloat16"
    assert [spec.name for spec in recipe.techniques] == ["prune", "qat"]
    assert recipe.techniques[0].params["lr_schedule"] == "plateau"
    assert recipe.resolved().validation_split == 0.1  # the plateau stage needs one


def test_a_report_is_a_recipe_file_that_round_trips(tmp_path):
    recipe = Recipe(
        epochs=3,
        optimizer="adamw",
        weight_decay=0.01,
        seed=5,
        techniques=(TechniqueSpec("prune", {"target_sparsity": 0.5, "sparsity_m_by_n": [2, 4]}),),
    )
    report = {"recipe": recipe.resolved().to_dict(), "baseline": {}, "optimized": {}}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert recipe_from_dict(read_recipe_file(str(path))) == recipe.resolved()


@pytest.mark.parametrize(
    "data, key, value",
    [
        ({"epocs": 2}, "epocs", "2"),
        ({"epochs": "two"}, "epochs", "two"),
        ({"epochs": 2.0}, "epochs", "2.0"),
        ({"deterministic": "yes"}, "deterministic", "yes"),
        ({"epochs": True}, "epochs", "True"),
        ({"learning_rate": -1}, "learning_rate", "-1.0"),
        ({"lr_schedule": "steps"}, "lr_schedule", "steps"),
        (
            {"techniques": [{"name": "prune", "params": {"target_sparsity": 1.2}}]},
            "techniques[0].params.target_sparsity",
            "1.2",
        ),
        (
            {"techniques": [{"name": "qat"}, {"name": "cluster", "params": {"number_of_clusters": 0}}]},
            "techniques[1].params.number_of_clusters",
            "0",
        ),
        (
            {"techniques": [{"name": "prune", "params": {"target_sparsity": 0.5, "sparsty": 1}}]},
            "techniques[0].params.sparsty",
            "1",
        ),
        (
            {
                "techniques": [
                    {"name": "prune", "params": {"target_sparsity": 0.5, "optimizer": "adam", "momentum": 0.9}}
                ]
            },
            "techniques[0].params.momentum",
            "0.9",
        ),
        ({"techniques": [{"name": "shrink"}]}, "techniques[0].name", "shrink"),
        ({"techniques": [{"name": "prune", "param": {}}]}, "techniques[0].param", "{}"),
        ({"techniques": ["prune"]}, "techniques[0]", "prune"),
        ({"search": {"tuner": "grid"}}, "search.tuner", "grid"),
    ],
)
def test_bad_keys_types_and_values_name_the_key_path(data, key, value):
    with pytest.raises(ConfigError) as err:
        recipe_from_dict(data)
    assert err.value.key == key and str(err.value).startswith(f"{key}={value}:")


@pytest.mark.parametrize(
    "name, text, reason",
    [
        ("r.yaml", "epochs: [1", "not valid YAML"),
        ("r.json", "{", "not valid JSON"),
        ("r.yaml", "- 1", "must hold a mapping"),
        ("r.txt", "", "must be a file ending in"),
    ],
)
def test_unreadable_files_are_errors_keyed_recipe(tmp_path, name, text, reason):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason) as err:
        read_recipe_file(str(path))
    assert err.value.key == "recipe"
    with pytest.raises(ConfigError, match="file not found"):
        read_recipe_file(str(tmp_path / "absent.yaml"))


def test_overrides_set_top_keys_every_named_stage_and_search():
    data = {
        "techniques": [{"name": "prune", "params": {}}, {"name": "qat"}, {"name": "prune", "params": {"epochs": 1}}]
    }
    assert set_override(data, "epochs", 3) == ["epochs"]
    assert set_override(data, "prune.epochs", 5) == ["techniques[0].params.epochs", "techniques[2].params.epochs"]
    assert set_override(data, "cluster.epochs", 5) == []
    assert set_override(data, "search.max_trials", 4) == ["search.max_trials"]
    assert data["epochs"] == 3 and data["techniques"][2]["params"]["epochs"] == 5
    assert data["search"] == {"max_trials": 4}
