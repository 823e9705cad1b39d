"""validate_auto_params: defaults, and one ConfigError per bad value, keyed auto.<param>."""

import pytest

from kopt import ConfigError
from kopt.auto.params import AUTO_PARAMS
from kopt.auto.params import validate_auto_params


def test_defaults_are_filled_in():
    values = validate_auto_params({"target_gzip_kb": 8})
    assert set(values) == set(AUTO_PARAMS) and values["max_accuracy_drop"] == 0.5 and values["target_gzip_kb"] == 8


@pytest.mark.parametrize(
    "params, key",
    [
        ({"max_accuracy_drop": -0.1}, "auto.max_accuracy_drop"),
        ({"max_accuracy_drop": "half"}, "auto.max_accuracy_drop"),
        ({"target_sparsity": 0.8, "target_gzip_kb": 8}, "auto.target_gzip_kb"),
        ({"target_sparsity": 1.2}, "auto.target_sparsity"),
        ({"target_gzip_kb": 0}, "auto.target_gzip_kb"),
        ({"time_budget": 0}, "auto.time_budget"),
        ({"time_budget": -5}, "auto.time_budget"),
        ({"epochs": 0}, "auto.epochs"),
        ({"validation_fraction": 1}, "auto.validation_fraction"),
        ({"steps": [0.9, 0.5]}, "auto.steps"),
        ({"criterion": "taylor"}, "auto.criterion"),
        ({"allocation": "best"}, "auto.allocation"),
        ({"fragile_drop": -1}, "auto.fragile_drop"),
        ({"calibration": "tflite"}, "auto.calibration"),
        ({"colour": 1}, "auto.colour"),
    ],
)
def test_bad_params_name_their_key(params, key):
    with pytest.raises(ConfigError) as err:
        validate_auto_params(params)
    assert err.value.key == key
    assert "\n" not in str(err.value)
