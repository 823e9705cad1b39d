"""The distillation benchmark: its figures and verdicts on made-up runs, and a tiny real run."""

import dataclasses
import json
import os
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from absl import app  # noqa: E402

from benchmarks import distillation  # noqa: E402
from benchmarks import distillation_report  # noqa: E402
from benchmarks import harness  # noqa: E402
from benchmarks.distillation_settings import DistillationSettings  # noqa: E402


def _run(scratch, distilled, teacher=99.0, hard=None):
    def scores(test):
        return {"test_accuracy": test, "val_accuracy": test - 0.5, "params": 0, "train_s": 1.0}

    run = {"teacher": scores(teacher), "scratch": scores(scratch), "distilled": scores(distilled)}
    if hard is not None:
        run["hard"] = scores(hard)
    return run


def test_hard_distillation_gets_its_own_table_when_the_run_has_it():
    runs = {"0": _run(96.0, 96.8, hard=96.4), "1": _run(96.2, 97.0, hard=96.1)}
    summary = distillation_report.summarize(runs)
    assert summary["hard_margin_test"]["mean"] == pytest.approx((0.4 - 0.1) / 2)
    rows = distillation_report.seed_rows(runs)
    document = {
        "quick": False,
        "command": "x",
        "wall_time_s": 60,
        "machine_line": "m",
        "data": "d",
        "settings_description": [],
        "rows": rows,
        "plot": "p.png",
    }
    text = distillation_report.render_section(document, summary, [])
    assert "| 0 | 96.00 | 96.80 | 96.40 | +0.80 | +0.40 |" in text
    older = distillation_report.summarize({"0": _run(96.0, 96.8)})
    assert "hard_test" not in older
    assert "soft - scratch" not in distillation_report.render_section({**document, "rows": []}, older, [])


def test_summary_and_verdicts():
    runs = {"0": _run(96.0, 96.8), "1": _run(96.2, 97.0), "2": _run(95.9, 96.9), "3": {"error": "boom"}}
    summary = distillation_report.summarize(runs)
    assert summary["seeds_ran"] == 3
    assert summary["margin_test"]["mean"] == pytest.approx((0.8 + 0.8 + 1.0) / 3)
    assert summary["scratch_test"]["range"] == pytest.approx(0.3)
    assert summary["distilled_test"]["std"] == pytest.approx(np.std([96.8, 97.0, 96.9]))
    verdicts = distillation_report.judge(summary, {"teacher": 200_000, "student": 4_000})
    assert [v["verdict"] for v in verdicts] == ["PASS", "PASS"]
    close = distillation_report.summarize({"0": _run(96.0, 96.1), "1": _run(96.5, 96.6)})
    assert distillation_report.judge(close, {"teacher": 100, "student": 20})[1]["verdict"] == "FAIL"
    assert distillation_report.judge(close, {"teacher": 100, "student": 20})[0]["verdict"] == "FAIL"
    one = distillation_report.summarize({"0": _run(96.0, 97.0)})
    assert distillation_report.judge(one, {"teacher": 100, "student": 1})[1]["verdict"] == "not run"


def test_settings_and_seeds():
    full = DistillationSettings.full()
    assert (full.temperature, full.alpha, full.student_epochs, full.student) == (2.0, 0.5, 60, "tiny_mlp")
    assert "temperature 2, alpha 0.5" in " ".join(full.describe())
    with pytest.raises(ValueError, match="Received: student_epochs=0"):
        dataclasses.replace(full, student_epochs=0)
    # A quick run keeps two seeds: the spread over seeds needs them.
    assert distillation.QUICK_SEEDS == 2
    with pytest.raises(app.UsageError, match="--seeds=a"):
        harness.parse_seeds(["a"])


@pytest.mark.slow
def test_tiny_real_run_writes_json_png_and_section(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    labels = rng.integers(0, 10, size=300)
    images = (rng.random((300, 28, 28)) * 60 + labels[:, None, None] * 19).astype("uint8")
    np.savez(data, x_train=images[:200], y_train=labels[:200], x_test=images[200:], y_test=labels[200:])
    settings = dataclasses.replace(DistillationSettings.quick(), max_train_examples=None, student_epochs=1)
    markdown_path = str(tmp_path / "B.md")
    document = distillation.run_benchmark(
        str(data), [0, 1], settings, output_dir=str(tmp_path), markdown_path=markdown_path, command="x", quick=True
    )
    saved = json.loads((tmp_path / "distillation_quick.json").read_text())
    assert saved["params"]["student"] * 10 <= saved["params"]["teacher"]
    assert [row["seed"] for row in saved["rows"]] == [0, 1]
    assert all(0 <= row["distilled_test"] <= 100 for row in saved["rows"])
    # Each student's float32 file is scored against it, and its steps are timed.
    distilled = saved["runs"]["0"]["distilled"]
    assert distilled["tflite"]["agreement"] > 0.9 and distilled["steps"]["timed_steps"] > 0
    assert distilled["tflite"]["tflite_accuracy"] * 100 == pytest.approx(distilled["test_accuracy"], abs=5)
    assert (tmp_path / "distillation_quick.png").read_bytes()[:4] == b"\x89PNG"
    text = open(markdown_path).read()
    assert "<!-- distillation:begin -->" in text and "Quick smoke run" in text and "| max-min |" in text
    assert document["section"] in text
