"""A 3-trial search completes, never reads the test split, and resumes after an interruption."""

import json

import pytest

from kopt.pipeline import Recipe
from kopt.pipeline import execution
from kopt.pipeline import format_trials
from kopt.pipeline import run


@pytest.mark.slow
def test_search_resumes_after_an_interruption_and_trains_the_best(tmp_path, monkeypatch):
    evaluations = []
    original = execution.execute

    def spy(recipe, techniques, strategy, **kwargs):
        evaluations.append(kwargs.get("evaluation", "test"))
        if interrupt_at and len(evaluations) == interrupt_at:
            raise KeyboardInterrupt  # as a user's Ctrl-C, which KerasTuner does not catch
        return original(recipe, techniques, strategy, **kwargs)

    monkeypatch.setattr("kopt.pipeline.tune.execute", spy)
    monkeypatch.setattr("kopt.pipeline.driver.execute", spy)
    search = {
        "tuner": "random",
        "max_trials": 3,
        "directory": str(tmp_path / "kt"),
        "size_budget_kib": 10,
        "space": {"learning_rate": {"min": 1e-3, "max": 3e-2, "sampling": "log"}, "optimizer": ["adam", "nesterov"]},
    }
    recipe = Recipe(
        model="tiny_cnn",
        epochs=1,
        batch_size=128,
        search=search,
        export_dir=str(tmp_path / "out"),
        report=str(tmp_path / "r.json"),
    )
    interrupt_at = 3
    with pytest.raises(KeyboardInterrupt):
        run(recipe)
    assert evaluations == ["validation"] * 3

    evaluations.clear()
    interrupt_at = None
    report = run(recipe)
    assert evaluations == ["validation", "test"]  # only the interrupted trial reruns, then the best recipe
    rows = report["trials"]
    assert [row["status"] for row in rows] == ["COMPLETED"] * 3
    best = max(rows, key=lambda row: row["score"])
    assert report["search"]["best_trial"] == best["trial_id"]
    best_recipe = report["search"]["best_recipe"]
    assert best_recipe["learning_rate"] == best["values"]["learning_rate"] and best_recipe["search"] is None
    assert report["recipe"]["learning_rate"] == recipe.learning_rate  # the run's own recipe, search included
    for row in rows:
        assert 0 <= row["val_accuracy"] <= 1 and row["within_budget"] == (row["gzip_bytes"] <= 10 * 1024)
        assert row["score"] == pytest.approx(row["val_accuracy"] - (0 if row["within_budget"] else 1))
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["trials"] == rows and written["search"]["objective"] == "val_score"
    assert (tmp_path / "r_trials.png").stat().st_size > 0
    assert f"* {best['trial_id']}" in format_trials(rows)
