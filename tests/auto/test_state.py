"""The on-disk state: fingerprint checked, models named by the state kept, others removed."""

import os

import keras
import pytest

from kopt.auto.state import RunState


def test_commit_keeps_named_models_and_refuses_other_runs(tmp_path):
    state = RunState(str(tmp_path))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    for step in (0, 1, 2):
        state.save_model(model, step)
        open(state.tflite_path(step), "wb").close()
    state.commit({"key": "k", "current": {"step": 2}, "best": {"step": 1}, "points": []})
    assert sorted(os.listdir(tmp_path / "models")) == ["step-1.keras", "step-1.tflite", "step-2.keras", "step-2.tflite"]
    assert state.load("k")["best"] == {"step": 1}
    assert state.load_model(2).count_params() == model.count_params()
    with pytest.raises(ValueError, match="other settings"):
        state.load("other")
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        state.load("k")
