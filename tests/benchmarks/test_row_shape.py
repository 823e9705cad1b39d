"""Tests for benchmarks/row_shape.py: the summary row every reader builds."""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import row_shape  # noqa: E402


def test_a_row_ran_when_any_seed_has_figures():
    seeds = {"0": {"tflite_accuracy": 0.9}, "1": {"error": "out of memory"}}
    row = row_shape.make_row("kopt_qat", "qat", "QAT", "kopt", {"benchmark": "quantization"}, "2", seeds)
    assert row["status"] == "ran" and row["reason"] is None and row["benchmark"] == "quantization"


def test_a_row_without_figures_says_why():
    seeds = {"0": {"error": "b"}, "1": {"error": "a"}}
    row = row_shape.make_row("kopt_qat", "qat", "QAT", "kopt", {"benchmark": "quantization"}, "2", seeds)
    assert row["status"] == row_shape.NOT_RUN and row["reason"] == "a; b"
    assert row_shape.make_row("k", "qat", "QAT", "kopt", {"benchmark": "q"}, "", {})["reason"] == "no seed ran"


def test_failed_row_names_the_benchmark_and_the_reason():
    row = row_shape.failed_row("pruning", "ValueError: bad")
    assert (row["key"], row["group"], row["status"], row["reason"]) == (
        "pruning_failed",
        "failed",
        row_shape.NOT_RUN,
        "ValueError: bad",
    )


def test_per_seed_keeps_errors_and_record_drops_missing_figures():
    runs = {0: {"x": 1}, 1: {"error": "boom"}}
    assert row_shape.per_seed(runs, lambda run: row_shape.record(x=run["x"], y=None)) == {
        "0": {"x": 1},
        "1": {"error": "boom"},
    }
    assert row_shape.median({"step_time_s_median": 0.5}) == 0.5 and row_shape.median(None) is None
