"""The extras benchmark: settings, its report on made-up runs, Keras int8 on a tiny model, process boundaries."""

import dataclasses
import os
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import extras  # noqa: E402
from benchmarks import extras_report  # noqa: E402
from benchmarks import keras_quantize  # noqa: E402
from benchmarks.clustering_kopt import ClusteringSettings  # noqa: E402
from benchmarks.extras_kopt import ExtrasSettings  # noqa: E402
from tests.benchmarks import test_pruning_benchmark as pruning_tests  # noqa: E402


def made_up_frameworks():
    def row(accuracy, step, **score):
        return {
            "file": "/e/x.tflite",
            "params": 20_410,
            "steps": {"step_time_s_median": step},
            "score": {
                "keras_accuracy": accuracy,
                "accuracy": accuracy,
                "agreement": 1.0,
                "gzip_bytes": 9_000,
                "max_unique_weights": 16,
                "weight_sparsity": 0.8,
                **score,
            },
        }

    kopt_rows = {
        "float32": row(0.98, None),
        "m_by_n_2_4": row(0.97, 0.012, m_by_n_ok=True),
        "keras_int8": {
            "file": None,
            "params": 20_420,
            "steps": None,
            "score": {"keras_accuracy": 0.979},
            "quantized_layers": ["dense"],
            "float_layers": ["conv2d"],
            "weight_bytes_float": 81_640,
            "weight_bytes_int8": 20_840,
            "file_errors": {"keras_litert": "ConverterError: no", "tflite_export": "Error: no"},
        },
    }
    plain = {"step_time_s_median": 0.010}
    kopt = {
        "status": "ran",
        "reason": None,
        "versions": {"keras": "3"},
        "runs": {"0": {"rows": kopt_rows, "plain_finetune": plain}, "1": {"error": "boom"}},
    }
    tfmot = {"status": "not run", "reason": "skipped with --skip_tfmot", "runs": {}, "versions": {}}
    return {"kopt": kopt, "tfmot": tfmot}


def test_settings_are_stated_and_checked():
    full, quick = ExtrasSettings.full(), ExtrasSettings.quick()
    assert (full.dense_epochs, full.finetune_epochs, full.finetune_batch_size, full.mask_frequency) == (4, 2, 128, 100)
    assert full.clustering == ClusteringSettings() and quick.clustering == ClusteringSettings.quick()
    assert quick.max_train_examples == 4000 and quick.as_dict()["clustering"]["cluster_epochs"] == 1
    assert "sparsity_m_by_n=(2, 4)" in " ".join(full.describe())
    with pytest.raises(ValueError, match="Received: structured_fraction=1"):
        dataclasses.replace(full, structured_fraction=1)
    with pytest.raises(ValueError, match="Received: finetune_epochs=0"):
        dataclasses.replace(full, finetune_epochs=0)
    with pytest.raises(ValueError, match="clustering.finetune_batch_size must equal"):
        dataclasses.replace(full, finetune_batch_size=64)


def test_seed_rows_take_step_ratios_and_flag_failures():
    rows = extras_report.seed_rows(made_up_frameworks())
    by_row = {row.get("row"): row for row in rows if "error" not in row}
    assert by_row["m_by_n_2_4"]["step_ratio"] == pytest.approx(1.2)
    assert by_row["m_by_n_2_4"]["notes"] == "2:4 pattern in the file: yes"
    # The float row's step is the plain fine-tune, the reference itself.
    assert by_row["float32"]["step_ratio"] == 1.0 and by_row["float32"]["step_ms"] == pytest.approx(10.0)
    assert by_row["keras_int8"]["tflite_accuracy"] is None and by_row["keras_int8"]["params"] == 20_420
    assert [row["error"] for row in rows if "error" in row] == ["boom"]


def test_render_section_reports_keras_int8_honestly_and_tfmot_not_run():
    frameworks = made_up_frameworks()
    document = {
        **pruning_tests.make_document(frameworks),
        "settings_description": ExtrasSettings().describe(),
        "rows": extras_report.seed_rows(frameworks),
        "plot": "extras.png",
    }
    section = extras_report.render_section(document)
    assert '| kopt | 0 | Keras `model.quantize("int8")` | 97.90 | – | – | – | 20,420 | – | – |' in section
    assert "stayed float: conv2d" in section and "81,640 -> 20,840 bytes" in section
    assert "No TFLite file: `keras_litert`: ConverterError: no; `tflite_export`: Error: no" in section
    assert "| tfmot | not run | skipped with --skip_tfmot |" in section
    assert "| kopt | 1 | not run: boom |" in section


def test_keras_quantize_reports_layers_and_never_invents_a_file(tmp_path):
    pytest.importorskip("keras")
    from benchmarks import kopt_side

    model = kopt_side.build_model()
    images = np.random.default_rng(0).random((8, 28, 28), dtype=np.float32)
    before = model.predict(images, verbose=0)
    quantized, info = keras_quantize.quantize_int8(model, kopt_side.TRAINER.copy_of)
    # Keras 3 quantizes Dense only; the convolution stays float.
    assert [entry.endswith("(Dense)") for entry in info["quantized_layers"]] == [True]
    assert [entry.endswith("(Conv2D)") for entry in info["float_layers"]] == [True]
    assert info["weight_bytes_int8"] < info["weight_bytes_float"] / 3
    assert np.allclose(model.predict(images, verbose=0), before)  # The original is untouched.
    assert np.abs(quantized.predict(images, verbose=0) - before).max() < 0.1
    path, errors = keras_quantize.export(quantized, str(tmp_path / "k.tflite"))
    if path is None:
        assert set(errors) == {"keras_litert", "tflite_export"} and all(errors.values())
        assert not os.path.exists(tmp_path / "k.tflite")
    else:
        assert os.path.getsize(path) > 0 and None in errors.values()


def test_error_line_keeps_the_message_not_the_mlir_location():
    err = RuntimeError(
        '<unknown>:0: error: loc(callsite(fused["x"] at fused["y"])): \'tfl.fully_connected\' op bad\nnote: more'
    )
    assert keras_quantize._first_error_line(err) == "RuntimeError: 'tfl.fully_connected' op bad"


def test_worker_imports_only_its_sibling_and_the_kopt_side_never_tfmot():
    imported = pruning_tests._top_level_imports(os.path.join(REPO_ROOT, "benchmarks", "tfmot_extras_worker.py"))
    assert not imported & {"kopt", "tflite_export", "benchmarks", "keras"}
    assert "tfmot_pruning_worker" in imported
    for name in ("extras.py", "extras_kopt.py", "extras_report.py", "keras_quantize.py"):
        imported = pruning_tests._top_level_imports(os.path.join(REPO_ROOT, "benchmarks", name))
        assert not imported & {"tensorflow_model_optimization", "tf_keras"}, name
    assert extras.WORKER.endswith("tfmot_extras_worker.py")
