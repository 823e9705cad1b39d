"""What :func:`kopt.auto.compress` returns, and the checks and fingerprint of its settings.

Example:

>>> check_compress_arguments({"max_accuracy_drop": -1})
Traceback (most recent call last):
...
ValueError: max_accuracy_drop must be a number >= 0 (points of accuracy). Received: max_accuracy_drop=-1
"""

import dataclasses
import hashlib
import json
import numbers
from typing import Any

import keras
import numpy as np

from kopt.auto.sensitivity import SensitivityTable
from kopt.auto.state import RunState
from kopt.pruning.masks import CRITERIA

__all__ = ["ALLOCATIONS", "CompressResult", "check_compress_arguments", "run_key"]

ALLOCATIONS = ("sensitivity", "uniform")
# Arguments that do not change what the search computes: they stay out of its fingerprint.
_NOT_IN_KEY = ("model", "train_data", "val_data", "output_dir", "verbose", "on_step", "time_budget")


@dataclasses.dataclass
class CompressResult:
    """The outcome of an accuracy-aware search.

    Attributes:
        model: The kept model (plain Keras, zeros baked in): the smallest within
            the budget, or, if none was, the most accurate one tried.
        met_budget: Whether ``model`` is within ``max_accuracy_drop``.
        message: Why the search stopped, in a sentence.
        stop_reason: ``"budget"``, ``"target"``, ``"time"``, ``"safe_levels"`` or
            ``"steps"``.
        float_accuracy: The float model's validation accuracy, percent.
        best: The kept model's point (see ``pareto``).
        pareto: Every point tried: ``step``, ``target_sparsity``, ``sparsity``,
            ``accuracy`` (its int8 file on validation, percent), ``keras_accuracy``,
            ``drop``, ``gzip_bytes``, ``bytes``, ``within_budget``, ``seconds``,
            and for pruning steps ``allocation`` and ``held_back``.
        sensitivity: The :class:`kopt.auto.SensitivityTable` used.
        seconds: Wall time over all resumptions.
        files: Paths of ``best_keras``, ``best_tflite``, ``report``, ``pareto_png``
            and ``sensitivity_png``.
        int8_calibration: Who calibrated the int8 files, ``"converter"`` or
            ``"kopt"`` (see :func:`kopt.auto.measure.int8_calibration`); with
            ``"kopt"`` the file of ``model`` is that of
            ``measure.calibrated_int8_model(model, calibration images)``
            converted without a representative dataset.
    """

    model: object
    met_budget: bool
    message: str
    stop_reason: str
    float_accuracy: float
    best: dict
    pareto: list
    sensitivity: SensitivityTable
    seconds: float
    files: dict
    int8_calibration: str = "converter"

    @classmethod
    def from_state(cls, state: RunState, data: dict[str, Any]) -> "CompressResult":
        """Builds the result of a finished search from its committed state."""
        best = data["points"][data["best"]["step"]]
        return cls(
            model=state.load_model(best["step"]),
            met_budget=bool(data["met_budget"]),
            message=data["message"],
            stop_reason=data["stop_reason"],
            float_accuracy=data["float_accuracy"],
            best=best,
            pareto=data["points"],
            sensitivity=SensitivityTable.from_dict(data["sensitivity"]),
            seconds=data["elapsed_s"],
            files=data["files"],
            int8_calibration=data["settings"].get("int8_calibration", "converter"),
        )

    def to_dict(self) -> dict:
        """Everything but the model, as JSON-ready plain data."""
        return {
            "met_budget": self.met_budget,
            "message": self.message,
            "stop_reason": self.stop_reason,
            "float_accuracy": self.float_accuracy,
            "best": self.best,
            "pareto": self.pareto,
            "sensitivity": self.sensitivity.to_dict(),
            "seconds": self.seconds,
            "files": self.files,
            "int8_calibration": self.int8_calibration,
        }


def check_compress_arguments(arguments: dict) -> dict:
    """Validates ``compress``'s arguments; returns the ones that define the search.

    Raises:
        ValueError: Naming the first bad argument and its value.
    """
    get = arguments.get
    _number("max_accuracy_drop", get("max_accuracy_drop", 0.5), low=0, what="points of accuracy")
    if get("target_sparsity") is not None and get("target_gzip_kb") is not None:
        raise ValueError(
            "give at most one of target_sparsity and target_gzip_kb. "
            f"Received: target_sparsity={get('target_sparsity')}, target_gzip_kb={get('target_gzip_kb')}"
        )
    if get("target_sparsity") is not None:
        _number("target_sparsity", get("target_sparsity"), low=0, high=1, strict=True)
    if get("target_gzip_kb") is not None:
        _number("target_gzip_kb", get("target_gzip_kb"), low=0, strict=True)
    if get("time_budget") is not None:
        _number("time_budget", get("time_budget"), low=0, strict=True, what="seconds")
    steps = get("steps", (0.5,))
    if (
        not isinstance(steps, (list, tuple))
        or not steps
        or any(isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < v < 1 for v in steps)
        or list(steps) != sorted(set(steps))
    ):
        raise ValueError(f"steps must be increasing sparsities in (0, 1). Received: steps={steps!r}")
    for name in ("epochs", "batch_size", "calibration_examples"):
        value = get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value!r}")
    value = get("batch_norm_batches", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"batch_norm_batches must be an integer >= 0. Received: batch_norm_batches={value!r}")
    _number("learning_rate", get("learning_rate", 1e-3), low=0, strict=True)
    if get("fragile_drop") is not None:
        _number("fragile_drop", get("fragile_drop"), low=0)
    if get("criterion", "magnitude") not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}. Received: criterion={get('criterion')!r}")
    if get("allocation", "sensitivity") not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}. Received: allocation={get('allocation')!r}")
    seed = get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0. Received: seed={seed!r}")
    if get("on_step") is not None and not callable(get("on_step")):
        raise ValueError(f"on_step must be callable or None. Received: on_step={get('on_step')!r}")
    settings = {key: value for key, value in arguments.items() if key not in _NOT_IN_KEY}
    return json.loads(json.dumps(settings, default=list))


def run_key(model: keras.Model, arrays, settings: dict) -> str:
    """Fingerprint of the model's weights, the data and the settings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value)).tobytes())
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:32]


def _number(name, value, *, low=None, high=None, strict=False, what=None):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok and low is not None:
        ok = value > low if strict else value >= low
    if ok and high is not None:
        ok = value < high
    if not ok:
        if high is not None:
            bounds = f"in ({low}, {high})"
        else:
            bounds = f"above {low}" if strict else f">= {low}"
        unit = f" ({what})" if what else ""
        raise ValueError(f"{name} must be a number {bounds}{unit}. Received: {name}={value!r}")
