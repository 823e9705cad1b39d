"""The accuracy-aware loop: budget kept, points reported, resumed to the same model."""

import json
import os

import numpy as np
import pytest

from kopt.auto import search as search_module
from kopt.auto.search import compress

_FAST = {"epochs": 1, "batch_size": 64, "sensitivity_sparsities": (0.5, 0.9), "verbose": 0, "calibration_examples": 64}


def test_keeps_the_smallest_model_within_budget(trained, tmp_path):
    model, fit, val = trained
    seen = []
    result = compress(
        model,
        fit,
        val,
        max_accuracy_drop=1.0,
        steps=(0.5, 0.98),
        output_dir=str(tmp_path),
        on_step=seen.append,
        **_FAST,
    )
    steps = [p["step"] for p in result.pareto]
    assert steps == list(range(len(steps))) and [p["step"] for p in seen] == steps
    within = [p for p in result.pareto if p["within_budget"]]
    assert result.met_budget and result.best in within
    assert result.best["gzip_bytes"] == min(p["gzip_bytes"] for p in within)
    assert all(p["drop"] == pytest.approx(result.float_accuracy - p["accuracy"]) for p in result.pareto)
    assert result.float_accuracy - result.best["accuracy"] <= 1.0
    assert result.best["step"] > 0 and result.best["sparsity"] > 0.45
    if result.stop_reason == "budget":
        assert not result.pareto[-1]["within_budget"] and "max_accuracy_drop=1" in result.message
    for name in ("best_keras", "best_tflite", "report", "pareto_png", "sensitivity_png"):
        assert os.path.isfile(result.files[name]), name
    report = json.load(open(result.files["report"]))
    assert [p["gzip_bytes"] for p in report["pareto"]] == [p["gzip_bytes"] for p in result.pareto]
    # A finished run answers from its state, without training again.
    again = compress(
        model,
        fit,
        val,
        max_accuracy_drop=1.0,
        steps=(0.5, 0.98),
        output_dir=str(tmp_path),
        on_step=lambda point: pytest.fail("trained again"),
        **_FAST,
    )
    for a, b in zip(again.model.get_weights(), result.model.get_weights()):
        np.testing.assert_array_equal(a, b)


class _Killed(Exception):
    pass


@pytest.mark.slow
def test_resumes_after_an_interruption_to_the_same_model(trained, tmp_path):
    model, fit, val = trained
    settings = dict(max_accuracy_drop=5.0, steps=(0.5, 0.7), **_FAST)
    whole = compress(model, fit, val, output_dir=str(tmp_path / "whole"), **settings)

    def kill_after_first_step(point):
        if point["step"] == 1:
            raise _Killed()

    with pytest.raises(_Killed):
        compress(model, fit, val, output_dir=str(tmp_path / "cut"), on_step=kill_after_first_step, **settings)
    resumed_steps = []
    resumed = compress(model, fit, val, output_dir=str(tmp_path / "cut"), on_step=resumed_steps.append, **settings)
    assert resumed_steps and resumed_steps[0]["step"] == 2  # steps 0 and 1 were not redone
    assert [p["gzip_bytes"] for p in resumed.pareto] == [p["gzip_bytes"] for p in whole.pareto]
    assert resumed.best["step"] == whole.best["step"]
    for a, b in zip(resumed.model.get_weights(), whole.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_unmeetable_budget_returns_the_best_model_with_a_message(trained, tmp_path, monkeypatch):
    model, fit, val = trained
    real = search_module.measure.int8_point

    def lossy(*args, **kwargs):  # Every int8 file scores 3 points low.
        point = real(*args, **kwargs)
        return {**point, "accuracy": point["accuracy"] - 3.0}

    monkeypatch.setattr(search_module.measure, "int8_point", lossy)
    result = compress(model, fit, val, max_accuracy_drop=0.5, steps=(0.5,), output_dir=str(tmp_path), **_FAST)
    assert not result.met_budget and result.stop_reason == "budget"
    assert "cannot be met" in result.message and "max_accuracy_drop=0.5" in result.message
    assert [p["step"] for p in result.pareto] == [0] and result.best["step"] == 0
    assert result.model.count_params() == model.count_params()


def test_target_sparsity_stops_the_search(trained, tmp_path):
    model, fit, val = trained
    result = compress(
        model,
        fit,
        val,
        max_accuracy_drop=50.0,
        target_sparsity=0.5,
        steps=(0.5, 0.9),
        output_dir=str(tmp_path),
        **_FAST,
    )
    assert result.stop_reason == "target" and len(result.pareto) == 2


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"max_accuracy_drop": -0.5}, "max_accuracy_drop=-0.5"),
        ({"target_sparsity": 0.8, "target_gzip_kb": 5}, "at most one"),
        ({"time_budget": 0}, "time_budget=0"),
        ({"steps": (0.9, 0.5)}, "steps="),
        ({"allocation": "greedy"}, "allocation='greedy'"),
        ({"int8_calibration": "tflite"}, "int8_calibration='tflite'"),
        ({"time_budget": 0.001}, "too small to fine-tune once"),
    ],
)
def test_bad_arguments_fail_before_training(trained, tmp_path, kwargs, text):
    model, fit, val = trained
    with pytest.raises(ValueError, match=text):
        compress(model, fit, val, output_dir=str(tmp_path), **{**_FAST, **kwargs})
    assert not os.path.exists(tmp_path / "state.json")
