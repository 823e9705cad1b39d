"""Checks of the ``auto`` recipe entry, with errors that name the recipe key.

``kopt-optimize --auto`` turns its flags into the params of the ``auto``
technique; :func:`validate_auto_params` checks them before any training and
raises :class:`kopt.ConfigError` with keys ``auto.<param>``, which the CLI maps
back to its flags (``auto.max_accuracy_drop`` -> ``--max_accuracy_drop``...).

Example:

>>> validate_auto_params({"max_accuracy_drop": 0.5, "target_sparsity": 0.9})["max_accuracy_drop"]
0.5
>>> validate_auto_params({"max_accuracy_drop": -1})
Traceback (most recent call last):
...
kopt.errors.ConfigError: auto.max_accuracy_drop=-1: must be a number of accuracy points >= 0, e.g. 0.5
"""

import numbers

from kopt.auto.measure import INT8_CALIBRATIONS
from kopt.auto.result import ALLOCATIONS
from kopt.errors import ConfigError
from kopt.pruning.masks import CRITERIA

__all__ = ["AUTO_PARAMS", "validate_auto_params"]

# Every param the ``auto`` technique reads, with its default.
AUTO_PARAMS = {
    "max_accuracy_drop": 0.5,
    "target_sparsity": None,
    "target_gzip_kb": None,
    "time_budget": None,
    "epochs": 2,
    "learning_rate": None,
    "batch_size": None,
    "validation_fraction": 0.1,
    "steps": None,
    "criterion": "magnitude",
    "allocation": "sensitivity",
    "fragile_drop": None,
    "calibration": None,
}


def validate_auto_params(params: dict) -> dict:
    """Checks the ``auto`` params; returns them with defaults filled in.

    Args:
        params: The technique's params (see :data:`AUTO_PARAMS`).

    Returns:
        A new dict with every key of :data:`AUTO_PARAMS`.

    Raises:
        ConfigError: For an unknown key, a negative drop, conflicting targets, a
            non-positive time budget, or any other bad value, keyed ``auto.<param>``.
    """
    if not isinstance(params, dict):
        raise ConfigError("auto", params, "the auto technique's params must be a dict")
    unknown = sorted(set(params) - set(AUTO_PARAMS))
    if unknown:
        raise ConfigError(f"auto.{unknown[0]}", params[unknown[0]], f"unknown param; known: {', '.join(AUTO_PARAMS)}")
    values = {**AUTO_PARAMS, **params}
    if not _number(values["max_accuracy_drop"], low=0):
        raise ConfigError(
            "auto.max_accuracy_drop", values["max_accuracy_drop"], "must be a number of accuracy points >= 0, e.g. 0.5"
        )
    if values["target_sparsity"] is not None and values["target_gzip_kb"] is not None:
        raise ConfigError(
            "auto.target_gzip_kb",
            values["target_gzip_kb"],
            f"conflicts with target_sparsity={values['target_sparsity']}; give one size target, not both",
        )
    if values["target_sparsity"] is not None and not _number(values["target_sparsity"], low=0, high=1):
        raise ConfigError("auto.target_sparsity", values["target_sparsity"], "must be a fraction in (0, 1), e.g. 0.9")
    if values["target_gzip_kb"] is not None and not _number(values["target_gzip_kb"], low=0, strict=True):
        raise ConfigError("auto.target_gzip_kb", values["target_gzip_kb"], "must be a size in KiB above 0, e.g. 8")
    if values["time_budget"] is not None and not _number(values["time_budget"], low=0, strict=True):
        raise ConfigError("auto.time_budget", values["time_budget"], "must be a number of seconds above 0, e.g. 600")
    for key in ("epochs", "batch_size"):
        value = values[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"auto.{key}", value, "must be an integer of at least 1")
    if values["learning_rate"] is not None and not _number(values["learning_rate"], low=0, strict=True):
        raise ConfigError("auto.learning_rate", values["learning_rate"], "must be a finite number above 0")
    if not _number(values["validation_fraction"], low=0, high=1):
        raise ConfigError(
            "auto.validation_fraction", values["validation_fraction"], "must be a fraction in (0, 1), e.g. 0.1"
        )
    steps = values["steps"]
    if steps is not None and (
        not isinstance(steps, (list, tuple))
        or not steps
        or not all(_number(v, low=0, high=1) for v in steps)
        or list(steps) != sorted(set(steps))
    ):
        raise ConfigError("auto.steps", steps, "must be increasing sparsities in (0, 1), e.g. 0.5,0.7,0.8,0.9")
    if values["criterion"] not in CRITERIA:
        raise ConfigError("auto.criterion", values["criterion"], f"must be one of {', '.join(CRITERIA)}")
    if values["allocation"] not in ALLOCATIONS:
        raise ConfigError("auto.allocation", values["allocation"], f"must be one of {', '.join(ALLOCATIONS)}")
    if values["fragile_drop"] is not None and not _number(values["fragile_drop"], low=0):
        raise ConfigError("auto.fragile_drop", values["fragile_drop"], "must be a number of accuracy points >= 0")
    if values["calibration"] not in (None, *INT8_CALIBRATIONS):
        raise ConfigError(
            "auto.calibration",
            values["calibration"],
            f"must be one of {', '.join(INT8_CALIBRATIONS)}, or left out (kopt for a model with a recurrent loop, "
            "the converter otherwise)",
        )
    return values


def _number(value, *, low, high=None, strict=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        return False
    if value < low or (strict and value == low):
        return False
    if high is not None:
        return low < value < high
    return value != float("inf")
