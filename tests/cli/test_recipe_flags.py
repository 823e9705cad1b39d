"""Flags over a recipe file: only the given flags change it, stages must exist."""

import pytest

from kopt import ConfigError
from kopt.cli.optimize import _FLAG_FOR_KEY
from kopt.cli.recipe_flags import FLAG_KEYS
from kopt.cli.recipe_flags import apply_flags


def _data():
    return {
        "epochs": 5,
        "techniques": [
            {"name": "prune", "params": {"target_sparsity": 0.5, "epochs": 2}},
            {"name": "qat", "params": {}},
        ],
    }


def test_given_flags_set_their_keys_and_report_the_paths():
    data = _data()
    paths = apply_flags(data, {"finetune_epochs": 3, "optimizer": "adamw", "tune": "random", "max_trials": 4})
    assert data["optimizer"] == "adamw" and data["epochs"] == 5
    assert [item["params"]["epochs"] for item in data["techniques"]] == [3, 3]
    assert data["search"] == {"tuner": "random", "max_trials": 4}
    assert paths["techniques[0].params.epochs"] == "finetune_epochs" and paths["techniques[1].params.epochs"]
    assert paths["optimizer"] == "optimizer"


@pytest.mark.parametrize(
    "given, key",
    [
        ({"cluster": 16}, "--cluster"),
        ({"distill": True}, "--distill"),
        ({"qat": False}, "--qat"),
        ({"temperature": 2.0}, "--temperature"),
    ],
)
def test_flags_for_stages_the_file_lacks_are_errors(given, key):
    with pytest.raises(ConfigError) as err:
        apply_flags(_data(), given)
    assert err.value.key == key


def test_tune_none_removes_the_search():
    data = {"search": {"tuner": "random"}}
    apply_flags(data, {"tune": "none"})
    assert data["search"] is None


def test_every_stage_key_a_flag_sets_maps_back_to_that_flag_in_errors():
    for flag, keys in FLAG_KEYS.items():
        for key in keys:
            if "." in key and not key.startswith("search.") and key in _FLAG_FOR_KEY:
                assert _FLAG_FOR_KEY[key] in (flag, "epochs", "learning_rate"), (flag, key)
