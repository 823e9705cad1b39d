"""The schedules benchmark: figures and verdicts on made-up runs, and a tiny real run."""

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import schedules  # noqa: E402
from benchmarks.schedules_settings import SchedulesSettings  # noqa: E402

SCHEDULES = ("constant", "cosine")


def _run(constant, cosine):
    def scores(test):
        return {"test_accuracy": test, "val_accuracy": test, "sparsity": 0.8, "final_learning_rate": 0.0, "train_s": 1}

    return {"float": scores(99.0), "constant": scores(constant), "cosine": scores(cosine)}


def test_summary_and_verdicts():
    runs = {"0": _run(97.0, 97.8), "1": _run(97.2, 98.0), "2": _run(97.1, 97.9), "3": {"error": "boom"}}
    summary = schedules.summarize(runs, SCHEDULES)
    assert summary["cosine_margin"]["mean"] == pytest.approx(0.8)
    assert summary["constant"]["range"] == pytest.approx(0.2)
    assert [v["passed"] for v in schedules.judge(summary, SCHEDULES)] == [True]
    close = schedules.summarize({"0": _run(97.0, 97.1), "1": _run(97.5, 97.6)}, SCHEDULES)
    assert [v["passed"] for v in schedules.judge(close, SCHEDULES)] == [False]


@pytest.mark.slow
def test_tiny_real_run_writes_json_and_its_section(tmp_path, mnist_npz):
    settings = SchedulesSettings(float_epochs=1, finetune_epochs=1, schedules=SCHEDULES, max_train_examples=300)
    markdown = tmp_path / "B.md"
    document = schedules.run_benchmark(
        mnist_npz, [0], settings, output_dir=str(tmp_path), markdown_path=str(markdown), command="test", quick=True
    )
    run = document["runs"]["0"]
    assert set(run) == {"float", "constant", "cosine"}
    assert run["cosine"]["final_learning_rate"] < run["constant"]["final_learning_rate"]
    assert all(run[kind]["sparsity"] == pytest.approx(0.8, abs=0.01) for kind in SCHEDULES)
    assert (tmp_path / "schedules_quick.json").is_file()
    assert "<!-- schedules:begin -->" in markdown.read_text()
