"""The pruning benchmark's pure pieces, on made-up results: no training here."""

import ast
import dataclasses
import json
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import machine  # noqa: E402
from benchmarks import markdown  # noqa: E402
from benchmarks import pruning_report  # noqa: E402
from benchmarks import tfmot_env  # noqa: E402
from benchmarks.pruning_settings import PruningSettings  # noqa: E402

SPARSITIES = (0.5, 0.8, 0.9)


def make_run(
    dense_accuracy,
    pruned_accuracies,
    *,
    plain_step=0.010,
    pruned_step=0.0105,
    dense_gzip=80_000,
    float_gzips=(45_000, 24_000, 15_000),
    int8_gzips=(15_000, 8_000, 5_000),
):
    pruned = {}
    for sparsity, accuracy, float_gzip, int8_gzip in zip(SPARSITIES, pruned_accuracies, float_gzips, int8_gzips):
        pruned[f"{sparsity:g}"] = {
            "sparsity": sparsity,
            "tflite_float32_accuracy": accuracy,
            "tflite_int8_accuracy": accuracy - 0.001,
            "tflite_float32_gzip_bytes": float_gzip,
            "tflite_int8_gzip_bytes": int8_gzip,
            "step_time_s_mean": pruned_step,
            "step_cpu_s_mean": 2 * pruned_step,
        }
    return {
        "dense": {
            "tflite_float32_accuracy": dense_accuracy,
            "tflite_int8_accuracy": dense_accuracy - 0.001,
            "tflite_float32_gzip_bytes": dense_gzip,
            "tflite_int8_gzip_bytes": 21_000,
        },
        "plain_finetune": {"step_time_s_mean": plain_step, "step_cpu_s_mean": 2 * plain_step},
        "pruned": pruned,
        "versions": {"tensorflow": "2.21.0"},
    }


def make_document(frameworks):
    return {
        "command": "python -m benchmarks.pruning --seeds=0,1",
        "quick": False,
        "started_utc": "2026-01-01 00:00",
        "wall_time_s": 600.0,
        "data": "../shared/data/mnist-22k.npz",
        "data_summary": "22,699 of 22,699 training images used, 10,000 test images",
        "seeds": [0, 1],
        "machine_line": "2 usable cores of 2 (Test CPU)",
        "settings": PruningSettings.full(SPARSITIES).as_dict(),
        "settings_description": PruningSettings.full(SPARSITIES).describe(),
        "plot": "benchmarks/results/pruning.png",
        "frameworks": frameworks,
    }


# --- markdown sections -------------------------------------------------------


def test_replace_section_appends_when_missing():
    text = markdown.replace_section("# Title\n\nIntro.\n", "pruning", "figures")
    assert text == "# Title\n\nIntro.\n\n<!-- pruning:begin -->\nfigures\n<!-- pruning:end -->\n"


def test_replace_section_replaces_only_its_own_section():
    text = (
        "# Benchmarks\n\n<!-- quantization:begin -->\nQ figures\n<!-- quantization:end -->\n\n"
        "<!-- pruning:begin -->\nold figures\n<!-- pruning:end -->\n\n"
        "<!-- clustering:begin -->\nC figures\n<!-- clustering:end -->\n"
    )
    updated = markdown.replace_section(text, "pruning", "new figures\n")
    assert "old figures" not in updated
    assert "<!-- pruning:begin -->\nnew figures\n<!-- pruning:end -->" in updated
    assert "<!-- quantization:begin -->\nQ figures\n<!-- quantization:end -->" in updated
    assert updated.endswith("<!-- clustering:begin -->\nC figures\n<!-- clustering:end -->\n")
    assert markdown.replace_section(updated, "pruning", "new figures\n") == updated


@pytest.mark.parametrize(
    "text",
    [
        "<!-- pruning:begin -->\nno end\n",
        "no begin\n<!-- pruning:end -->\n",
        "<!-- pruning:end -->\n<!-- pruning:begin -->\n",
        "<!-- pruning:begin -->\n<!-- pruning:end -->\n<!-- pruning:begin -->\n<!-- pruning:end -->\n",
    ],
)
def test_replace_section_refuses_broken_markers(text):
    with pytest.raises(ValueError, match="pruning"):
        markdown.replace_section(text, "pruning", "figures")


def test_section_name_must_be_a_plain_word():
    with pytest.raises(ValueError, match="Received: name="):
        markdown.markers("prun ing -->")


def test_write_section_creates_file_with_header_then_keeps_other_text(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    markdown.write_section(path, "pruning", "first")
    assert path.read_text().startswith(markdown.HEADER)
    path.write_text(path.read_text() + "\nA note someone added.\n")
    markdown.write_section(path, "pruning", "second")
    text = path.read_text()
    assert "second" in text and "first" not in text and "A note someone added." in text


# --- figures and verdicts ------------------------------------------------------


@pytest.mark.parametrize(
    "value, limit, expected",
    [
        (0.5, 0.5, "PASS"),
        (0.49, 0.5, "PASS"),
        (-1.0, 0.5, "PASS"),
        (0.51, 0.5, "FAIL"),
        (None, 0.5, "not run"),
        (float("nan"), 0.5, "not run"),
    ],
)
def test_verdict(value, limit, expected):
    assert pruning_report.verdict(value, limit) == expected


def test_seed_metrics_computes_drops_ratios_and_step_ratio():
    run = make_run(0.98, (0.979, 0.975, 0.96), plain_step=0.010, pruned_step=0.012)
    metrics = pruning_report.seed_metrics(run, SPARSITIES)
    assert metrics["dense_acc"] == pytest.approx(98.0)
    assert metrics["drop@0.5"] == pytest.approx(0.1)
    assert metrics["drop@0.9"] == pytest.approx(2.0)
    assert metrics["gzip_float_ratio@0.8"] == pytest.approx(24_000 / 80_000)
    assert metrics["gzip_int8_ratio@0.8"] == pytest.approx(8_000 / 80_000)
    assert metrics["step_ratio@0.8"] == pytest.approx(1.2)
    assert metrics["step_ratio"] == pytest.approx(1.2)
    assert metrics["cpu_ratio"] == pytest.approx(1.2)
    assert metrics["plain_step_ms"] == pytest.approx(10.0)


def test_seed_metrics_of_a_failed_or_unpruned_seed():
    assert pruning_report.seed_metrics({"error": "boom"}, SPARSITIES) == {}
    run = make_run(0.98, (0.97, 0.97, 0.97))
    run["pruned"] = {}
    metrics = pruning_report.seed_metrics(run, SPARSITIES)
    assert "dense_acc" in metrics and "drop@0.8" not in metrics and "step_ratio" not in metrics


def test_summarize_means_over_seeds_that_have_the_figure():
    entry = {
        "status": "ran",
        "runs": {
            "0": make_run(0.98, (0.978, 0.976, 0.97)),
            "1": make_run(0.96, (0.958, 0.956, 0.95)),
            "2": {"error": "worker crashed"},
        },
    }
    summary = pruning_report.summarize(entry, SPARSITIES)
    assert summary["mean"]["dense_acc"] == pytest.approx(97.0)
    assert summary["mean"]["drop@0.8"] == pytest.approx(0.4)
    assert summary["seeds"]["2"] == {}


def test_judge_applies_the_issue_targets_to_each_framework():
    kopt = {"status": "ran", "runs": {"0": make_run(0.98, (0.979, 0.978, 0.97), pruned_step=0.0105)}}
    tfmot = {
        "status": "ran",
        "runs": {"0": make_run(0.98, (0.98, 0.97, 0.96), pruned_step=0.013, float_gzips=(45_000, 30_000, 20_000))},
    }
    summaries = {
        name: pruning_report.summarize(entry, SPARSITIES) for name, entry in (("kopt", kopt), ("tfmot", tfmot))
    }
    judged = {row["metric"]: row for row in pruning_report.judge(summaries, SPARSITIES)}
    assert set(judged) == {
        "drop@0.5",
        "drop@0.8",
        "drop@0.9",
        "step_ratio",
        "gzip_float_ratio@0.8",
        "gzip_int8_ratio@0.8",
    }
    assert judged["drop@0.8"]["kopt"]["verdict"] == "PASS"  # 0.2 points
    assert judged["drop@0.8"]["tfmot"]["verdict"] == "FAIL"  # 1.0 point
    assert judged["drop@0.9"]["kopt"]["verdict"] == "FAIL"  # 1.0 point
    assert judged["step_ratio"]["kopt"]["verdict"] == "PASS"  # 1.05x
    assert judged["step_ratio"]["tfmot"]["verdict"] == "FAIL"  # 1.3x
    assert judged["gzip_float_ratio@0.8"]["kopt"]["verdict"] == "PASS"  # 0.30x
    assert judged["gzip_float_ratio@0.8"]["tfmot"]["verdict"] == "FAIL"  # 0.375x
    assert judged["gzip_int8_ratio@0.8"]["kopt"]["verdict"] == "PASS"  # 0.10x


def test_render_section_says_not_run_for_a_framework_that_could_not_run():
    frameworks = {
        "kopt": {
            "status": "ran",
            "reason": None,
            "versions": {"keras": "3.15.1"},
            "runs": {"0": make_run(0.98, (0.979, 0.978, 0.97)), "1": make_run(0.97, (0.97, 0.968, 0.96))},
        },
        "tfmot": {
            "status": "not run",
            "reason": "could not install tfmot and TensorFlow: no network",
            "versions": {},
            "runs": {},
        },
    }
    summaries = {name: pruning_report.summarize(entry, SPARSITIES) for name, entry in frameworks.items()}
    judged = pruning_report.judge(summaries, SPARSITIES)
    section = pruning_report.render_section(make_document(frameworks), summaries, judged)
    assert "`python -m benchmarks.pruning --seeds=0,1`" in section
    assert "tfmot: not run (could not install tfmot and TensorFlow: no network)" in section
    assert "| tfmot | not run |" in section
    assert "| **kopt** | **mean** |" in section
    assert "| kopt | 0 | 98.00 |" in section and "| kopt | 1 | 97.00 |" in section
    target_line = next(line for line in section.splitlines() if line.startswith("| Accuracy at 80%"))
    assert target_line.endswith("| 0.20 PASS | not run |")
    assert "2 usable cores of 2 (Test CPU)" in section
    for line in PruningSettings.full(SPARSITIES).describe():
        assert line in section
    assert "Quick smoke run" not in section


def test_render_section_marks_a_quick_run():
    frameworks = {
        "kopt": {"status": "ran", "runs": {"0": make_run(0.9, (0.9, 0.9, 0.9))}},
        "tfmot": {"status": "not run", "reason": "skipped with --skip_tfmot", "runs": {}},
    }
    summaries = {name: pruning_report.summarize(entry, SPARSITIES) for name, entry in frameworks.items()}
    document = {**make_document(frameworks), "quick": True}
    section = pruning_report.render_section(document, summaries, pruning_report.judge(summaries, SPARSITIES))
    assert "Quick smoke run" in section


# --- settings, environment, machine ---------------------------------------------


def test_settings_keep_the_example_model_and_epochs_and_travel_as_json():
    full = PruningSettings.full()
    assert (full.dense_epochs, full.prune_epochs, full.prune_batch_size) == (4, 2, 16)
    assert (full.initial_sparsity, full.power, full.frequency, full.validation_split) == (0.5, 3, 20, 0.1)
    travelled = json.loads(json.dumps(full.as_dict()))
    assert travelled["sparsities"] == [0.5, 0.8, 0.9]
    # The Dense layer takes every zero, so that the target fraction of all kernel weights is zero.
    dense_target = travelled["pruned_layer_sparsity"]["0.9"]
    assert abs(dense_target * 20280 - 0.9 * (20280 + 108)) < 1e-6 and travelled["keep_first_layer_dense"] is True
    assert "end_step=ceil(train_examples x 0.9 / 16) x 1," in " ".join(full.describe())
    example = dataclasses.replace(full, end_step_epochs=None, keep_first_layer_dense=False, prune_batch_size=128)
    assert "end_step=ceil(train_examples x 0.9 / 128) x 2," in " ".join(example.describe())
    assert example.as_dict()["pruned_layer_sparsity"] == {"0.5": 0.5, "0.8": 0.8, "0.9": 0.9}
    quick = PruningSettings.quick((0.8,))
    assert quick.dense_epochs < full.dense_epochs and quick.max_train_examples and quick.sparsities == (0.8,)


def test_legacy_keras_environ():
    environ = tfmot_env.legacy_keras_environ({"PATH": "/bin", "PYTHONPATH": "/elsewhere"})
    assert environ == {"PATH": "/bin", "TF_USE_LEGACY_KERAS": "1"}


def test_tfmot_env_reports_a_reason_instead_of_raising(tmp_path, monkeypatch):
    monkeypatch.setattr(tfmot_env, "_run", lambda command, timeout_s: "no network")
    env = tfmot_env.ensure_tfmot_env(tmp_path / "venv", log=lambda message: None)
    assert not env.available
    assert env.reason == "could not create the virtual environment: no network"


def _top_level_imports(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    return imported


def test_worker_imports_nothing_from_this_repository_but_the_shared_core():
    # It runs under tf_keras in its own environment, where kopt does not exist.
    worker = os.path.join(REPO_ROOT, "benchmarks", "tfmot_pruning_worker.py")
    imported = _top_level_imports(worker)
    assert not imported & {"kopt", "tflite_export", "benchmarks", "keras"}
    assert "core" in imported  # benchmarks/core, from the worker's own folder.


def test_shared_core_imports_only_what_both_environments_have():
    # The workers import benchmarks/core as "core" beside tf_keras and tfmot: no kopt, no Keras 3.
    folder = os.path.join(REPO_ROOT, "benchmarks", "core")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            imported = _top_level_imports(os.path.join(folder, name)) - set(sys.stdlib_module_names)
            assert imported <= {"numpy", "ai_edge_litert"}, name


def test_kopt_never_imports_tfmot():
    for top in ("kopt", "tflite_export"):
        for folder, _, files in os.walk(os.path.join(REPO_ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    assert not _top_level_imports(path) & {"tensorflow_model_optimization", "tf_keras"}, path


def test_cpu_model_reads_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\n\nprocessor\t: 1\nmodel name\t: Test CPU 9000\n")
    assert machine.cpu_model(str(cpuinfo)) == "Test CPU 9000"
    line = machine.one_line(
        {"usable_cores": 2, "cpu_count": 2, "cpu_model": "Test CPU", "memory_gib": 24.0, "load_average_1m": 1.5},
        load_at_end=2.0,
    )
    assert line == "2 usable cores of 2 (Test CPU), 24.0 GiB memory, 1-minute load average 1.5 at start, 2.0 at end"
