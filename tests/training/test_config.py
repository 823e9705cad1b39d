"""TrainingConfig validation names the key (with a stage prefix) and the value."""

import pytest

from kopt import ConfigError
from kopt.training import TrainingConfig


@pytest.mark.parametrize(
    "kwargs, key, reason",
    [
        ({"epochs": 0}, "epochs", "at least 1"),
        ({"learning_rate": 0.0}, "learning_rate", "above 0"),
        ({"learning_rate": float("inf")}, "learning_rate", "finite"),
        ({"optimizer": "lamb"}, "optimizer", "must be one of"),
        ({"optimizer": "momentum", "momentum": 1.0}, "momentum", "below 1"),
        ({"optimizer": "adam", "momentum": 0.5}, "momentum", "only momentum, nesterov, rmsprop"),
        ({"weight_decay": -0.1}, "weight_decay", "at least 0"),
        ({"lr_schedule": "step"}, "lr_schedule", "must be one of"),
        ({"epochs": 3, "warmup_epochs": 3}, "warmup_epochs", "fewer than the 3"),
        ({"warmup_epochs": -1}, "warmup_epochs", "at least 0"),
        ({"early_stopping_patience": 1.5}, "early_stopping_patience", "integer"),
    ],
)
def test_bad_settings_name_the_prefixed_key(kwargs, key, reason):
    with pytest.raises(ConfigError) as err:
        TrainingConfig(**kwargs).validate(prefix="prune.")
    assert err.value.key == f"prune.{key}" and reason in err.value.reason


def test_defaults_and_momentum_resolution():
    assert TrainingConfig().validate().to_dict()["optimizer"] == "adam"
    assert TrainingConfig(optimizer="momentum").resolved_momentum() == 0.9
    assert TrainingConfig(optimizer="rmsprop").resolved_momentum() == 0.0
    assert TrainingConfig(optimizer="nesterov", momentum=0.8).resolved_momentum() == 0.8
    assert TrainingConfig(optimizer="adam").resolved_momentum() is None


@pytest.mark.parametrize(
    "kwargs, needs",
    [
        ({}, False),
        ({"lr_schedule": "cosine"}, False),
        ({"lr_schedule": "plateau"}, True),
        ({"early_stopping_patience": 0}, True),
    ],
)
def test_needs_validation_only_for_plateau_and_early_stopping(kwargs, needs):
    assert TrainingConfig(**kwargs).needs_validation is needs
