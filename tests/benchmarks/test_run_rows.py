"""Summary rows read from made-up benchmark documents: every technique, "not run" rows, float baselines."""

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import row_shape  # noqa: E402
from benchmarks import run_rows  # noqa: E402
from benchmarks.clustering_kopt import ClusteringSettings  # noqa: E402
from benchmarks.distillation_settings import DistillationSettings  # noqa: E402
from benchmarks.extras_kopt import ExtrasSettings  # noqa: E402
from tests.benchmarks import test_pruning_benchmark as pruning_tests  # noqa: E402
from tests.benchmarks import test_quantization_benchmark as quantization_tests  # noqa: E402

NOT_RUN_TFMOT = {"status": "not run", "reason": "skipped with --skip_tfmot", "runs": {}, "versions": {}}


def ran(runs):
    return {"status": "ran", "reason": None, "runs": runs, "versions": {"tensorflow": "2.21.0"}}


def pruning_run(accuracies=(0.979, 0.975, 0.970), plain=0.010, pruned=0.011):
    run = pruning_tests.make_run(0.980, accuracies, plain_step=plain, pruned_step=pruned)
    run["plain_finetune"]["step_time_s_median"] = plain
    run["dense"].update(keras_accuracy=0.981, tflite_float32_path="/f/dense.tflite", tflite_float32_agreement=1.0)
    for key, entry in run["pruned"].items():
        entry.update(
            step_time_s_median=pruned,
            keras_accuracy=entry["tflite_float32_accuracy"],
            tflite_float32_path=f"/f/pruned_{key}.tflite",
            tflite_float32_agreement=0.999,
        )
    return run


def pruning_document(kopt_runs, tfmot=NOT_RUN_TFMOT):
    document = pruning_tests.make_document({"kopt": ran(kopt_runs), "tfmot": tfmot})
    return {**document, "benchmark": "pruning"}


def quantization_document(kopt_runs, tfmot=NOT_RUN_TFMOT):
    for seed, run in kopt_runs.items():
        run["files"] = {kind: f"/q/{seed}_{kind}.tflite" for kind in ("float32", "ptq_int8", "qat_int8")}
    return {**quantization_tests.make_document({"kopt": ran(kopt_runs), "tfmot": tfmot}), "benchmark": "quantization"}


def clustering_document():
    score = {"accuracy": 0.97, "keras_accuracy": 0.971, "agreement": 0.998, "gzip_bytes": 9_000}
    run = {
        "scores": {row: dict(score) for row in ("float32", *row_shape.CLUSTER_ROWS)},
        "files": {row: f"/c/{row}.tflite" for row in ("float32", *row_shape.CLUSTER_ROWS)},
        "steps": {row: {"step_time_s_median": 0.030} for row in row_shape.CLUSTER_ROWS},
        "plain_finetune": {"step_time_s_median": 0.020},
    }
    return {
        "benchmark": "clustering",
        "command": "python -m benchmarks.clustering --seeds=0",
        "settings": ClusteringSettings().as_dict(),
        "runs": {"0": run},
    }


def distillation_document():
    def student(test, step):
        return {
            "test_accuracy": test,
            "steps": {"step_time_s_median": step},
            "tflite": {
                "path": f"/d/{test}.tflite",
                "tflite_accuracy": test / 100,
                "agreement": 1.0,
                "gzip_bytes": 80_000,
            },
        }

    runs = {"0": {"scratch": student(95.0, 0.004), "distilled": student(96.0, 0.005)}, "1": {"error": "boom"}}
    return {
        "benchmark": "distillation",
        "command": "python -m benchmarks.distillation --seeds=0,1",
        "settings": DistillationSettings.full().as_dict(),
        "runs": runs,
    }


def extras_document(tfmot=NOT_RUN_TFMOT):
    def row(name, step=0.012, file=True):
        return {
            "file": f"/e/{name}.tflite" if file else None,
            "keras_top1": "/e/x.npy",
            "params": 20_420,
            "steps": {"step_time_s_median": step},
            "score": {"keras_accuracy": 0.97, "accuracy": 0.97, "agreement": 1.0, "gzip_bytes": 40_000},
        }

    rows = {name: row(name) for name in ("float32", "m_by_n_2_4", "structured")}
    rows["keras_int8"] = {
        **row("keras_int8", file=False),
        "steps": None,
        "score": {"keras_accuracy": 0.979},
        "quantized_layers": ["dense (Dense)"],
        "float_layers": ["conv2d (Conv2D)"],
        "file_errors": {"keras_litert": "ConverterError: no", "tflite_export": "ConversionError: no"},
    }
    kopt = ran({"0": {"rows": rows, "plain_finetune": {"step_time_s_median": 0.010}}})
    return {
        "benchmark": "extras",
        "command": "python -m benchmarks.extras --seeds=0",
        "settings": ExtrasSettings.full().as_dict(),
        "frameworks": {"kopt": kopt, "tfmot": tfmot},
    }


def by_key(rows):
    return {row["key"]: row for row in rows}


def test_pruning_rows_carry_each_seed_and_the_same_process_plain_step():
    rows = by_key(run_rows.rows_from_pruning(pruning_document({"0": pruning_run(), "1": {"error": "boom"}})))
    row = rows["kopt_prune_0.8"]
    assert row["status"] == "ran" and row["epochs"] == "4 + 2 pruning" and row["rank"] == 0.8
    assert row["seeds"]["0"] == {
        "keras_accuracy": 0.975,
        "tflite_accuracy": 0.975,
        "agreement": 0.999,
        "gzip_bytes": 24_000,
        "file": "/f/pruned_0.8.tflite",
        "step_s": 0.011,
        "plain_step_s": 0.010,
    }
    assert row["seeds"]["1"] == {"error": "boom"}
    assert rows["kopt_float"]["seeds"]["0"]["step_s"] == rows["kopt_float"]["seeds"]["0"]["plain_step_s"]


def test_a_framework_that_could_not_run_gives_not_run_rows_with_its_reason():
    rows = by_key(run_rows.rows_from_pruning(pruning_document({"0": pruning_run()})))
    for key in ("tfmot_prune_0.5", "tfmot_prune_0.9", "tfmot_float"):
        assert rows[key]["status"] == "not run" and rows[key]["reason"] == "skipped with --skip_tfmot"
        assert rows[key]["seeds"] == {}


def test_quantization_rows_time_qat_but_not_ptq():
    rows = by_key(run_rows.rows_from_quantization(quantization_document({"0": quantization_tests.make_run()})))
    qat, ptq = rows["kopt_qat"]["seeds"]["0"], rows["kopt_ptq"]["seeds"]["0"]
    assert qat["step_s"] == 0.024 and qat["plain_step_s"] == 0.020 and qat["file"] == "/q/0_qat_int8.tflite"
    assert qat["agreement"] == 0.999 and qat["gzip_bytes"] == 11_000
    assert "step_s" not in ptq and ptq["tflite_accuracy"] == 0.975 and ptq["keras_accuracy"] == 0.980
    assert rows["tfmot_qat"]["status"] == "not run"


def test_quantization_rows_of_their_own_model_have_their_own_float_row():
    document = quantization_document({"0": quantization_tests.make_run()})
    rows = by_key(run_rows.rows_from_quantization(document))
    assert rows["kopt_float_q"]["group"] == "qat_float"
    assert rows["kopt_float_q"]["technique"] == "float baseline, conv-BN CNN"
    assert rows["kopt_qat"]["technique"] == "QAT int8, conv-BN CNN"
    assert {rows[key]["baseline"] for key in ("kopt_float_q", "kopt_qat", "kopt_ptq")} == {"qat_float"}
    assert "over this model's float row" in rows["kopt_ptq"]["note"]
    # A run on the model the other benchmarks share (or from before the setting) is their baseline.
    for model in ("tfmot_example_cnn", None):
        document["settings"] = {key: value for key, value in document["settings"].items() if key != "model"}
        if model:
            document["settings"]["model"] = model
        rows = by_key(run_rows.rows_from_quantization(document))
        assert rows["kopt_float_q"]["group"] == "float" and rows["kopt_qat"]["technique"] == "QAT int8"
        assert rows["kopt_qat"]["baseline"] == "float" and rows["kopt_qat"]["note"] == ""


def test_clustering_distillation_and_extras_rows():
    clustering = by_key(run_rows.rows_from_clustering(clustering_document()))
    pcqat = clustering["kopt_prune_cluster_pcqat_int8"]
    assert pcqat["epochs"] == "4 + 4 prune + 3 cluster + 1 PCQAT"
    assert pcqat["technique"] == "pruning 80% + clustering, 16 clusters + PCQAT int8"
    assert pcqat["seeds"]["0"]["step_s"] == 0.030 and pcqat["seeds"]["0"]["plain_step_s"] == 0.020
    distilled = by_key(run_rows.rows_from_distillation(distillation_document()))["kopt_distill"]
    assert distilled["seeds"]["0"]["keras_accuracy"] == pytest.approx(0.96)
    assert distilled["seeds"]["0"]["plain_step_s"] == 0.004 and distilled["seeds"]["1"] == {"error": "boom"}
    extras = by_key(run_rows.rows_from_extras(extras_document()))
    keras_int8 = extras["keras_keras_int8"]
    assert keras_int8["framework"] == "keras" and keras_int8["status"] == "ran"
    assert keras_int8["note"] == "int8: dense (Dense); float: conv2d (Conv2D)"
    assert "file" not in keras_int8["seeds"]["0"] and keras_int8["seeds"]["0"]["params"] == 20_420
    assert "keras_litert: ConverterError: no" in keras_int8["seeds"]["0"]["no_file"]
    assert extras["kopt_m_by_n_2_4"]["seeds"]["0"]["step_s"] == 0.012
    assert extras["tfmot_cluster"]["status"] == "not run"


def test_assemble_orders_rows_keeps_one_float_per_framework_and_reports_failures():
    documents = {
        "pruning": pruning_document({"0": pruning_run()}),
        "quantization": quantization_document({"0": quantization_tests.make_run()}),
        "extras": extras_document(),
    }
    rows = run_rows.assemble(documents, {"clustering": "RuntimeError: no memory"})
    floats = [row for row in rows if row["group"] == "float"]
    # kopt's from extras (first source that ran); tfmot's could not run anywhere: one row says so.
    assert [(row["framework"], row["benchmark"], row["status"]) for row in floats] == [
        ("kopt", "extras", "ran"),
        ("tfmot", "extras", "not run"),
    ]
    assert [row["key"] for row in rows][:2] == ["kopt_float", "tfmot_float"]
    prune = [(row["framework"], row["rank"]) for row in rows if row["group"] == "prune"]
    assert prune == [("kopt", 0.5), ("tfmot", 0.5), ("kopt", 0.8), ("tfmot", 0.8), ("kopt", 0.9), ("tfmot", 0.9)]
    failed = rows[-1]
    assert failed["status"] == "not run" and failed["reason"] == "RuntimeError: no memory"
    assert failed["technique"] == "benchmarks.clustering"
    groups = [row["group"] for row in rows]
    assert groups.index("2_4") < groups.index("qat_float") < groups.index("qat") < groups.index("ptq")
    assert groups.index("ptq") < groups.index("keras_int8")
