"""init_from: the run's model starts from a saved model's weights, or the run stops before training."""

import json

import keras
import numpy as np
import pytest

from kopt import ConfigError
from kopt.models import small_cnn
from kopt.pipeline import Recipe
from kopt.pipeline.init_from import check_init_from
from kopt.pipeline.init_from import initialize_from
from kopt.pipeline.recipe_file import recipe_from_dict


def _saved(tmp_path, model, name="source.keras"):
    path = str(tmp_path / name)
    model.save(path)
    return path


def test_every_fitting_weight_is_copied_and_reported(tmp_path):
    keras.utils.set_random_seed(1)
    source = small_cnn((8, 8, 1), 10)
    path = _saved(tmp_path, source)
    keras.utils.set_random_seed(2)
    target = small_cnn((8, 8, 1), 10)
    entry = initialize_from(target, path)
    assert entry["path"] == path and entry["counts"] == {"copied": 10, "partial": 0, "skipped": 0}
    for layer in source.layers:
        for expected, received in zip(layer.get_weights(), target.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(received, expected)
    json.dumps(entry)  # goes into the JSON report as it is


def test_another_class_count_keeps_the_overlap_of_the_head(tmp_path):
    path = _saved(tmp_path, small_cnn((8, 8, 1), 10))
    entry = initialize_from(small_cnn((8, 8, 1), 4), path)
    assert entry["counts"] == {"copied": 8, "partial": 2, "skipped": 0}
    assert {item["layer"] for item in entry["partial"]} == {"logits"}


def test_a_file_of_which_nothing_fits_is_an_error_naming_the_setting(tmp_path):
    other = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, name="other")])
    path = _saved(tmp_path, other)
    with pytest.raises(ConfigError, match=r"init_from=.*source.keras: none of its weights fits model 'small_cnn'.*"
                                          r"\(other\).*e.g. conv1/kernel: no layer named 'conv1'"):  # fmt: skip
        initialize_from(small_cnn((8, 8, 1), 10), path)


def test_missing_foreign_and_misnamed_files_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="init_from=.*absent.keras: file not found"):
        initialize_from(small_cnn((8, 8, 1), 10), str(tmp_path / "absent.keras"))
    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    with pytest.raises(ConfigError, match="not a loadable Keras model file"):
        initialize_from(small_cnn((8, 8, 1), 10), str(junk))
    with pytest.raises(ConfigError, match="init_from=model.h5: must be a path to a .keras file"):
        check_init_from("model.h5")
    check_init_from(None)


def test_the_recipe_and_a_recipe_file_carry_and_check_it():
    assert Recipe(init_from="trained.keras").validate().to_dict()["init_from"] == "trained.keras"
    with pytest.raises(ConfigError, match="init_from=trained.h5"):
        Recipe(init_from="trained.h5").validate()
    assert recipe_from_dict({"init_from": "a.keras"}).init_from == "a.keras"
    with pytest.raises(ConfigError, match="init_from=3: must be str or null"):
        recipe_from_dict({"init_from": 3})
