"""Recipe validation names the key and the value."""

import json

import pytest

from kopt import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec


def test_defaults_are_valid_and_json_friendly():
    recipe = Recipe().validate()
    data = recipe.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["dataset"] == "digits" and data["techniques"] == []


def test_techniques_serialize_in_order():
    recipe = Recipe(techniques=(TechniqueSpec("a", {"x": 1}), TechniqueSpec("b")))
    assert [t["name"] for t in recipe.to_dict()["techniques"]] == ["a", "b"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("epochs", -1),
        ("epochs", 1.5),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("learning_rate", -0.1),
        ("learning_rate", float("nan")),
        ("seed", -1),
        ("dataset", ""),
        ("model", " "),
        ("export_dir", ""),
        ("report", "r.txt"),
        ("strategy", "horovod"),
        ("num_gpus", 0),
        ("tpu", ""),
        ("optimizer", "lamb"),
        ("lr_schedule", "linear"),
        ("warmup_epochs", 10),
        ("weight_decay", -1.0),
        ("early_stopping_patience", -1),
        ("mixed_precision", "float16"),
        ("deterministic", "yes"),
        ("validation_split", 1.0),
        ("search", "random"),
        ("image_size", [0, 32]),
        ("image_size", [32, 32, 3]),
    ],
)
def test_bad_values_name_key_and_value(key, value):
    with pytest.raises(ConfigError) as err:
        Recipe(**{key: value}).validate()
    assert err.value.key == key
    assert str(err.value).startswith(f"{key}={value}")


def test_techniques_must_be_specs_and_the_error_names_the_bad_element():
    with pytest.raises(ConfigError, match="^techniques=prune: each technique must be a TechniqueSpec"):
        Recipe(techniques=("prune",)).validate()


def test_validation_split_is_resolved_from_what_needs_one():
    assert Recipe().resolved().validation_split == 0.0
    assert Recipe(lr_schedule="plateau").resolved().validation_split == 0.1
    assert Recipe(early_stopping_patience=2).resolved().validation_split == 0.1
    stage = TechniqueSpec("prune", {"target_sparsity": 0.5, "lr_schedule": "plateau"})
    assert Recipe(techniques=(stage,)).resolved().validation_split == 0.1
    assert Recipe(validation_split=0.2).resolved().validation_split == 0.2


def test_training_config_carries_the_training_keys():
    config = Recipe(
        epochs=3, optimizer="nesterov", momentum=0.8, lr_schedule="cosine", warmup_epochs=1
    ).training_config()
    assert (config.epochs, config.optimizer, config.momentum, config.lr_schedule, config.warmup_epochs) == (
        3,
        "nesterov",
        0.8,
        "cosine",
        1,
    )
