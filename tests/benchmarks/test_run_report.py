"""The summary's figures, table, section and plot from made-up rows, and the latency pass on tiny files."""

import os
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import row_shape  # noqa: E402
from benchmarks import run_measure  # noqa: E402
from benchmarks import run_report  # noqa: E402


def row(key, group, framework, seeds, *, status="ran", reason=None, note=""):
    return {
        "key": key,
        "group": group,
        "rank": 0.0,
        "technique": key.replace("_", " "),
        "framework": framework,
        "benchmark": "made_up",
        "command": f"python -m benchmarks.{key}",
        "epochs": "4 + 2",
        "note": note,
        "status": status,
        "reason": reason,
        "seeds": seeds,
    }


def figures(accuracy, *, step=0.012, plain=0.010, latency=0.040, gzip=40_000, file="/x.tflite"):
    return {
        "keras_accuracy": accuracy,
        "tflite_accuracy": accuracy - 0.001,
        "agreement": 0.999,
        "gzip_bytes": gzip,
        "file": file,
        "step_s": step,
        "plain_step_s": plain,
        "latency_ms": latency,
        "params": 20_410,
        "nonzero_params": 4_100,
    }


def made_up_rows():
    return [
        row(
            "kopt_float",
            "float",
            "kopt",
            {"0": figures(0.98, step=0.010, latency=0.050), "1": figures(0.97, step=0.010, latency=0.030)},
        ),
        row("kopt_prune", "prune", "kopt", {"0": figures(0.97, step=0.011), "1": figures(0.96, step=0.013)}),
        row("tfmot_prune", "prune", "tfmot", {}, status="not run", reason="skipped with --skip_tfmot"),
        row(
            "keras_keras_int8",
            "keras_int8",
            "keras",
            {"0": {"keras_accuracy": 0.975, "params": 20_420, "no_file": "keras_litert: ConverterError: no"}},
        ),
        row(
            "kopt_distill",
            "distill",
            "kopt",
            {"0": figures(0.95, latency=0.010), "2": figures(0.96, latency=0.020), "3": {"error": "boom"}},
        ),
    ]


def test_summarize_takes_ratios_per_seed_then_means():
    rows = {r["key"]: r for r in run_report.summarize(made_up_rows())}
    prune = rows["kopt_prune"]
    assert prune["per_seed"]["0"]["step_ratio"] == pytest.approx(1.1)
    assert prune["per_seed"]["1"]["step_ratio"] == pytest.approx(1.3)
    assert prune["mean"]["step_ratio"] == pytest.approx(1.2)
    # Latency over the float file of the same seed: 0.040 / 0.050 and 0.040 / 0.030.
    assert prune["mean"]["latency_ratio"] == pytest.approx((0.8 + 4 / 3) / 2)
    assert prune["mean"]["keras_accuracy"] == pytest.approx(96.5) and prune["mean"]["gzip_kb"] == pytest.approx(40)
    # Seeds the float row lacks divide by its mean latency; a failed seed has no figures.
    distill = rows["kopt_distill"]
    assert distill["per_seed"]["0"]["latency_ratio"] == pytest.approx(0.2)
    assert distill["per_seed"]["2"]["latency_ratio"] == pytest.approx(0.5)
    assert distill["per_seed"]["3"] == {}
    # Keras' int8 row has no file: no size or latency, and nothing invented for them.
    keras = rows["keras_keras_int8"]["mean"]
    assert keras == {"keras_accuracy": pytest.approx(97.5), "params": 20_420}
    assert rows["kopt_float"]["mean"]["step_ratio"] == 1.0 and rows["kopt_float"]["mean"]["latency_ratio"] == 1.0


def test_rows_of_a_model_of_their_own_divide_latency_by_its_float_row():
    own = [
        {**row("kopt_float_q", "qat_float", "kopt", {"0": figures(0.99, latency=0.200)}), "baseline": "qat_float"},
        {**row("kopt_qat", "qat", "kopt", {"0": figures(0.99, latency=0.300)}), "baseline": "qat_float"},
    ]
    rows = {r["key"]: r for r in run_report.summarize(made_up_rows() + own)}
    assert rows["kopt_qat"]["per_seed"]["0"]["latency_ratio"] == pytest.approx(1.5)
    assert rows["kopt_float_q"]["per_seed"]["0"]["latency_ratio"] == pytest.approx(1.0)
    # Rows without a baseline group still divide by the shared float row (0.050 for seed 0).
    assert rows["kopt_prune"]["per_seed"]["0"]["latency_ratio"] == pytest.approx(0.8)


def test_table_says_not_run_with_the_reason_and_dashes_where_there_is_no_figure():
    lines = run_report.table_lines(run_report.summarize(made_up_rows()))
    assert len(lines) == 2 + 5
    header = lines[0].split(" | ")
    assert header[0] == "| technique" and "latency ratio" in header and header[-1] == "notes |"
    not_run = next(line for line in lines if line.startswith("| tfmot prune |"))
    assert not_run.count(row_shape.NOT_RUN) == len(run_report.COLUMNS) + 1
    assert "not run: skipped with --skip_tfmot" in not_run
    keras = next(line for line in lines if line.startswith("| keras keras int8 |"))
    assert "| 97.50 | – | – | – | 20,420 | – |" in keras
    assert "no TFLite file: keras_litert: ConverterError: no" in keras
    distill = next(line for line in lines if line.startswith("| kopt distill |"))
    assert "| 0, 2 (3 failed) |" in distill and "`python -m benchmarks.kopt_distill`" in distill


def test_seed_table_lists_every_seed_of_rows_that_ran():
    lines = run_report.seed_table_lines(run_report.summarize(made_up_rows()))
    seeds = [line.split(" | ")[2] for line in lines[2:]]
    assert seeds == ["0", "1", "0", "1", "0", "0", "2", "3"]
    assert "failed: boom" in lines[-1]


def test_render_section_states_command_machine_versions_and_marks_quick(tmp_path):
    document = {
        "quick": True,
        "command": "python -m benchmarks.run --quick",
        "started_utc": "2026-01-01 00:00",
        "wall_time_s": 300.0,
        "seeds": [0, 1],
        "data": "../shared/data/mnist-22k.npz",
        "machine_line": "2 usable cores of 2 (Test CPU)",
        "versions_lines": {"kopt and Keras rows": "tensorflow 2.21.0, keras 3.15.1", "tfmot rows": "not run (x)"},
        "benchmark_lines": ["`benchmarks.pruning`: 1.0 minutes, section below"],
        "rows": run_report.summarize(made_up_rows()),
        "plot": "summary_quick.png",
    }
    section = run_report.render_section(document)
    assert section.startswith("## Summary: every technique side by side\n\n**Quick smoke run")
    assert "`python -m benchmarks.run --quick`" in section and "5.0 minutes; seeds 0, 1" in section
    assert "Machine: 2 usable cores of 2 (Test CPU)." in section
    assert "- kopt and Keras rows: tensorflow 2.21.0, keras 3.15.1" in section
    assert "<details><summary>Every seed</summary>" in section and "![Summary" in section
    path = run_report.plot(document["rows"], str(tmp_path / "s.png"))
    assert open(path, "rb").read(4) == b"\x89PNG"


def test_parameters_count_nonzero_only_when_every_tensor_is_known():
    report = {
        "parameters": 30,
        "tensors": [{"parameter": True, "zeros": 4}, {"parameter": True, "zeros": 1}, {"parameter": False, "zeros": 9}],
    }
    assert run_measure.parameters(report) == (30, 25)
    report["tensors"][0]["zeros"] = None
    assert run_measure.parameters(report) == (30, None)


def test_measure_files_times_each_file_once_per_round(tmp_path):
    keras = pytest.importorskip("keras")
    import tflite_export

    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, bias_initializer="ones")])
    weights = model.get_weights()
    weights[0][:3] = 0.0
    model.set_weights(weights)
    path = tflite_export.convert(model, str(tmp_path / "m.tflite"))
    rows = [
        row("a", "float", "kopt", {"0": {"file": path}, "1": {"file": path}, "2": {"error": "x"}}),
        row("b", "prune", "kopt", {"0": {"keras_accuracy": 0.5}}),
    ]
    done = run_measure.measure_files(rows, rounds=2, runs=3, warmup=1, log=lambda _: None)
    assert done["files"] == 1 and done["rounds"] == 2 and done["threads"] == 1 and done["batch_size"] == 1
    record = rows[0]["seeds"]["0"]
    assert record["params"] == 28 and record["nonzero_params"] == 28 - 12
    assert len(record["latency_rounds_ms"]) == 2 and record["latency_ms"] > 0
    assert record["latency_ms"] == pytest.approx(float(np.median(record["latency_rounds_ms"])))
    assert rows[0]["seeds"]["2"] == {"error": "x"} and rows[1]["seeds"]["0"] == {"keras_accuracy": 0.5}
