"""The auto benchmark: its verdicts on made-up runs, and a tiny real run."""

import dataclasses
import json
import os
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


from benchmarks import auto  # noqa: E402
from benchmarks import auto_report  # noqa: E402
from benchmarks.auto_settings import AutoSettings  # noqa: E402


def _run(float_test, uniform, allocated, auto_test, auto_bytes, uniform_bytes=9000):
    def row(test, size=uniform_bytes):
        return {"keras_test": test, "int8_test": test, "gzip_bytes": size, "int8_val": test}

    pruned = {
        key: {
            "uniform": row(uniform),
            "allocated": row(allocated),
            "random": row(uniform - 10),
            "allocation": {"sparsities": {}, "held_back": []},
        }
        for key in ("0.8", "0.9")
    }
    structured = {"0.5": {kind: {"before_finetune_test": 90.0, "keras_test": 95.0} for kind in ("l1", "taylor")}}
    return {
        "float": {"keras_test": float_test},
        "pruned": pruned,
        "structured": structured,
        "auto": {"int8_test": auto_test, "gzip_bytes": auto_bytes, "sparsity": 0.85, "wall_s": 100.0},
    }


def test_summary_and_verdicts():
    settings = dataclasses.replace(AutoSettings.full(), structured_fractions=(0.5,))
    runs = {"0": _run(96.5, 95.0, 95.6, 96.2, 7000), "1": _run(96.7, 95.2, 95.4, 96.3, 7100), "2": {"error": "x"}}
    summary = auto_report.summarize(runs, settings)
    assert summary["seeds_ran"] == 2
    assert summary["allocated_0.8_keras_test"]["mean"] == pytest.approx(95.5)
    assert summary["uniform_0.8_keras_test"]["range"] == pytest.approx(0.2)
    assert summary["auto_drop"]["mean"] == pytest.approx((0.3 + 0.4) / 2)
    verdicts = auto_report.judge(runs, summary, settings)
    assert [v["verdict"] for v in verdicts] == ["PASS", "PASS", "PASS", "PASS"]
    worse = {"0": _run(96.5, 95.0, 94.0, 95.5, 9500)}
    verdicts = auto_report.judge(worse, auto_report.summarize(worse, settings), settings)
    assert [v["verdict"] for v in verdicts] == ["FAIL", "FAIL", "FAIL", "FAIL"]
    assert auto.QUICK_SEEDS == 2
    with pytest.raises(ValueError, match="finetune_epochs=0"):
        dataclasses.replace(settings, finetune_epochs=0)


@pytest.mark.slow
def test_tiny_real_run_writes_json_png_and_section(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=700)
    images = (rng.random((700, 28, 28)) * 20 + labels[:, None, None] * 23).astype("uint8")
    data = tmp_path / "d.npz"
    np.savez(data, x_train=images[:500], y_train=labels[:500], x_test=images[500:], y_test=labels[500:])
    settings = dataclasses.replace(
        AutoSettings.quick(),
        max_train_examples=None,
        dense_epochs=3,
        sparsities=(0.8,),
        sensitivity_levels=(0.5, 0.9),
        auto_steps=(0.5,),
        calibration_examples=32,
    )
    markdown_path = str(tmp_path / "B.md")
    document = auto.run_benchmark(
        str(data), [0], settings, output_dir=str(tmp_path), markdown_path=markdown_path, command="x", quick=True
    )
    saved = json.loads((tmp_path / "auto_quick.json").read_text())
    run = saved["runs"]["0"]
    assert "error" not in run, run.get("error")
    assert set(run["pruned"]["0.8"]) >= {"uniform", "allocated", "random"}
    assert [p["step"] for p in run["auto"]["pareto"]][0] == 0
    assert (tmp_path / "auto_quick.png").read_bytes()[:4] == b"\x89PNG"
    text = open(markdown_path).read()
    assert "<!-- auto:begin -->" in text and "Quick smoke run" in text and document["section"] in text
