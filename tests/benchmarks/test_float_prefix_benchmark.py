"""The float-prefix benchmark's summary and section, on made-up rows."""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import float_prefix  # noqa: E402


def _rows():
    rows = []
    for seed, (int8, prefix) in enumerate([(1.05, 0.80), (0.95, 0.70)]):
        for name, ratio in (("float32", 1.0), ("qat_int8", int8), ("qat_int8_float_prefix", prefix)):
            rows.append(
                {"model": "mobilenet_v2", "seed": seed, "file": name, "accuracy": 0.4 + seed / 100,
                 "kib": 600.0, "ratio": ratio, "noamx_ratio": ratio / 2}
            )  # fmt: skip
    return rows


def test_summary_gives_each_file_its_mean_and_every_seed():
    summary = {entry["file"]: entry for entry in float_prefix.summarize(_rows())}
    assert list(summary) == list(float_prefix.FILES)
    assert summary["qat_int8"]["ratio"] == [1.05, 0.95] and summary["qat_int8"]["ratio_mean"] == 1.0
    assert abs(summary["qat_int8_float_prefix"]["noamx_ratio_mean"] - 0.375) < 1e-9
    assert summary["float32"]["seeds"] == [0, 1]


def test_section_states_the_recipe_every_seed_and_each_plan():
    rows = _rows()
    candidates = [
        {"cut": None, "float_layers": 0, "float_params": 0, "float_share": 0.0, "ms": 0.06},
        {"cut": "block_2_add", "float_layers": 26, "float_params": 4096, "float_share": 0.0097, "ms": 0.045},
    ]
    document = {
        "command": "python -m benchmarks.float_prefix",
        "machine": "a machine",
        "elapsed_min": 30.0,
        "data": "12,000 of 12,000 training images used, 3,000 test images",
        "settings": {
            "float_epochs": 15,
            "float_learning_rate": 0.002,
            "qat_epochs": 2,
            "qat_learning_rate": 1e-4,
            "latency_rounds": 7,
            "latency_calls": 100,
            "max_float_share": 0.05,
        },  # fmt: skip
        "summary": float_prefix.summarize(rows),
        "plans": [
            {
                "model": "mobilenet_v2",
                "seed": 0,
                "cut": "block_2_add",
                "float_layers": 26,
                "ms": 0.045,
                "int8_ms": 0.06,
                "candidates": candidates,
            }
        ],  # fmt: skip
    }
    text = float_prefix.report(document)
    assert "`python -m benchmarks.float_prefix`" in text and "max_float_share=0.05" in text
    assert "| mobilenet_v2 | qat_int8 | 40.50 (40.00/41.00) | 600 | 1.000 (1.050/0.950) | 0.500 (0.525/0.475) |" in text
    assert "| mobilenet_v2 | 0 | block_2_add | 26 | 1.0% | 0.0450 | 0.0600 |" in text


def test_a_run_of_other_networks_keeps_the_earlier_rows_and_names_both_commands(tmp_path):
    import json

    path = tmp_path / "float_prefix.json"
    plan = {"model": "mobilenet_v2", "seed": 0, "cut": None, "float_layers": 0, "ms": 0.05, "int8_ms": 0.05,
            "candidates": [{"cut": None, "float_layers": 0, "float_params": 0, "float_share": 0.0, "ms": 0.05}]}  # fmt: skip
    earlier = {"command": "python -m benchmarks.float_prefix", "machine": "m1", "elapsed_min": 28.0,
               "rows": _rows(), "plans": [plan]}  # fmt: skip
    path.write_text(json.dumps(earlier))
    parts, rows, plans = float_prefix.earlier_parts(str(path), ["resnet20"])
    assert rows == _rows() and plans == [plan]
    assert parts == [{"command": "python -m benchmarks.float_prefix", "machine": "m1", "elapsed_min": 28.0,
                      "models": ["mobilenet_v2"]}]  # fmt: skip
    # Measuring the same network again replaces it: nothing of it is kept.
    assert float_prefix.earlier_parts(str(path), ["mobilenet_v2"]) == ([], [], [])
    assert float_prefix.earlier_parts(str(tmp_path / "none.json"), ["resnet20"]) == ([], [], [])
    parts.append({"command": "python -m benchmarks.float_prefix --models=resnet20", "machine": "m2",
                  "elapsed_min": 30.0, "models": ["resnet20"]})  # fmt: skip
    text = float_prefix._parts({"parts": parts})
    assert text == (
        "`python -m benchmarks.float_prefix` (mobilenet_v2) on m1, 28.0 min; "
        "`python -m benchmarks.float_prefix --models=resnet20` (resnet20) on m2, 30.0 min"
    )
