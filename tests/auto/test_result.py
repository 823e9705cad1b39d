"""compress's argument checks and fingerprint."""

import keras
import numpy as np
import pytest

from kopt.auto.result import check_compress_arguments
from kopt.auto.result import run_key


def test_settings_exclude_what_does_not_change_the_search():
    settings = check_compress_arguments(
        {"max_accuracy_drop": 0.5, "steps": (0.5, 0.8), "time_budget": 60, "verbose": 1, "output_dir": "x"}
    )
    assert settings == {"max_accuracy_drop": 0.5, "steps": [0.5, 0.8]}


@pytest.mark.parametrize(
    "arguments, text",
    [
        ({"max_accuracy_drop": float("nan")}, "max_accuracy_drop=nan"),
        ({"target_sparsity": 0.0}, "target_sparsity=0.0"),
        ({"target_gzip_kb": -2}, "target_gzip_kb=-2"),
        ({"epochs": 1.5}, "epochs=1.5"),
        ({"criterion": "taylor"}, "criterion='taylor'"),
        ({"seed": -1}, "seed=-1"),
        ({"on_step": 3}, "on_step=3"),
    ],
)
def test_bad_arguments_name_the_value(arguments, text):
    with pytest.raises(ValueError, match=text):
        check_compress_arguments(arguments)


def test_key_changes_with_weights_data_and_settings():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    data = (np.zeros((4, 2), "float32"),)
    key = run_key(model, data, {"a": 1})
    assert key == run_key(model, data, {"a": 1})
    assert key != run_key(model, data, {"a": 2})
    assert key != run_key(model, (np.ones((4, 2), "float32"),), {"a": 1})
    model.layers[0].kernel.assign(np.ones((2, 2)))
    assert key != run_key(model, data, {"a": 1})
