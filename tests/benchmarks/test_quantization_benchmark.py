"""The quantization benchmark's pure pieces, on made-up results, and its flags: no training here."""

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
from absl import flags  # noqa: E402

from benchmarks import harness  # noqa: E402
from benchmarks import pruning_report  # noqa: E402
from benchmarks import quantization  # noqa: E402
from benchmarks import quantization_models  # noqa: E402
from benchmarks import quantization_plot  # noqa: E402
from benchmarks import quantization_report  # noqa: E402
from benchmarks.quantization_settings import QuantizationSettings  # noqa: E402
from tests.benchmarks import test_pruning_benchmark as pruning_tests  # noqa: E402

FLOAT_BYTES = 85_000


def make_run(
    float_accuracy=0.980,
    *,
    qat_accuracy=0.979,
    ptq_accuracy=0.975,
    qat_agreement=0.999,
    qat_bytes=22_000,
    plain_step=0.020,
    qat_step=0.024,
    float_ms=0.030,
    qat_ms=0.025,
):
    def score(tflite_accuracy, keras_accuracy, agreement, size, latency):
        return {
            "tflite_accuracy": tflite_accuracy,
            "keras_accuracy": keras_accuracy,
            "agreement": agreement,
            "bytes": size,
            "gzip_bytes": size // 2,
            "latency_ms": latency,
            "latency_no_xnnpack_ms": 2 * latency,
        }

    return {
        "scores": {
            "float32": score(float_accuracy, float_accuracy, 1.0, FLOAT_BYTES, float_ms),
            "ptq_int8": score(ptq_accuracy, float_accuracy, 0.99, 23_000, 0.028),
            "qat_int8": score(qat_accuracy, qat_accuracy + 0.0005, qat_agreement, qat_bytes, qat_ms),
        },
        "plain_finetune": {
            "step_time_s_median": plain_step,
            "step_cpu_s_median": 2 * plain_step,
            "keras_accuracy": 0.981,
        },
        "qat": {"step_time_s_median": qat_step, "step_cpu_s_median": 2 * qat_step},
        "versions": {"tensorflow": "2.21.0"},
    }


def make_document(frameworks, *, quick=False):
    settings = QuantizationSettings.quick() if quick else QuantizationSettings.full()
    return {
        **pruning_tests.make_document(frameworks),
        "command": "python -m benchmarks.quantization --seeds=0,1",
        "quick": quick,
        "settings": settings.as_dict(),
        "settings_description": settings.describe(),
        "plot": "benchmarks/results/quantization.png",
    }


def summaries_of(frameworks):
    return {name: quantization_report.summarize(entry) for name, entry in frameworks.items()}


# --- settings --------------------------------------------------------------------


def test_settings_are_the_stated_ones_and_travel_as_json():
    full = QuantizationSettings.full()
    assert (full.dense_epochs, full.dense_batch_size, full.learning_rate, full.validation_split) == (4, 32, 1e-3, 0.1)
    assert (full.qat_epochs, full.qat_batch_size, full.qat_learning_rate) == (2, 128, 1e-4)
    assert full.max_train_examples is None
    assert json.loads(json.dumps(full.as_dict())) == full.as_dict()
    text = " ".join(full.describe())
    assert "epochs 4, batch size 32" in text and "learning rate 0.0001), epochs 2, batch size 128" in text
    quick = QuantizationSettings.quick()
    assert quick.dense_epochs < full.dense_epochs and quick.max_train_examples and quick.qat_epochs == 2
    assert "the first 4000 training examples" in " ".join(quick.describe())


def test_settings_name_their_model_and_refuse_an_unknown_one():
    assert QuantizationSettings.full().model == "conv_bn_cnn"
    assert "conv-BN CNN" in " ".join(QuantizationSettings.full().describe())
    example = QuantizationSettings.quick("tfmot_example_cnn")
    assert example.model == "tfmot_example_cnn" and "20,410 parameters" in example.describe()[0]
    with pytest.raises(ValueError, match="Received: model='resnet'"):
        QuantizationSettings(model="resnet")


# --- models ------------------------------------------------------------------------


@pytest.mark.parametrize("name, params", [("conv_bn_cnn", "225,050"), ("tfmot_example_cnn", "20,410")])
def test_models_have_the_parameters_their_description_states(name, params):
    keras = pytest.importorskip("keras")
    model = quantization_models.build(name, keras)
    assert f"{model.count_params():,} parameters" in quantization_models.DESCRIPTIONS[name]
    assert f"{params} parameters" in quantization_models.DESCRIPTIONS[name]
    assert model.output_shape == (None, 10) and model.input_shape == (None, 28, 28)


def test_conv_bn_cnn_is_the_block_qat_folds():
    keras = pytest.importorskip("keras")
    model = quantization_models.build("conv_bn_cnn", keras)
    kinds = [type(layer).__name__ for layer in model.layers]
    for index, kind in enumerate(kinds):
        if kind == "Conv2D":
            assert kinds[index + 1 : index + 3] == ["BatchNormalization", "ReLU"]
            assert not model.layers[index].use_bias
    assert kinds.count("Conv2D") == 3


def test_build_refuses_an_unknown_model():
    with pytest.raises(ValueError, match="Received: model='vgg'"):
        quantization_models.build("vgg", None)


@pytest.mark.parametrize("field, value", [("qat_epochs", 1), ("latency_rounds", 0), ("qat_batch_size", 0)])
def test_settings_refuse_values_that_would_time_nothing(field, value):
    with pytest.raises(ValueError, match=f"Received: {field}={value}"):
        dataclasses.replace(QuantizationSettings.full(), **{field: value})


# --- figures and verdicts ----------------------------------------------------------


def test_verdict_at_least():
    assert pruning_report.verdict(99.6, 99.5, at_least=True) == "PASS"
    assert pruning_report.verdict(99.5, 99.5, at_least=True) == "PASS"
    assert pruning_report.verdict(99.4, 99.5, at_least=True) == "FAIL"
    assert pruning_report.verdict(None, 99.5, at_least=True) == "not run"


def test_seed_metrics_computes_drops_and_ratios():
    metrics = quantization_report.seed_metrics(make_run())
    assert metrics["float_keras_acc"] == pytest.approx(98.0)
    assert metrics["qat_drop"] == pytest.approx(0.1)
    assert metrics["ptq_drop"] == pytest.approx(0.5)
    assert metrics["qat_keras_acc"] == pytest.approx(97.95)
    assert metrics["plain_keras_acc"] == pytest.approx(98.1)
    assert metrics["qat_agreement"] == pytest.approx(99.9)
    assert metrics["qat_size_ratio"] == pytest.approx(22_000 / FLOAT_BYTES)
    assert metrics["ptq_size_ratio"] == pytest.approx(23_000 / FLOAT_BYTES)
    assert metrics["step_ratio"] == pytest.approx(1.2)
    assert metrics["cpu_ratio"] == pytest.approx(1.2)
    assert metrics["plain_step_ms"] == pytest.approx(20.0)
    assert metrics["qat_latency_ratio"] == pytest.approx(0.025 / 0.030)
    assert metrics["qat_latency_ratio_no_xnnpack"] == pytest.approx(0.025 / 0.030)
    assert metrics["ptq_latency_ratio"] == pytest.approx(0.028 / 0.030)


def test_seed_metrics_of_a_failed_or_unscored_seed():
    assert quantization_report.seed_metrics({"error": "boom"}) == {}
    assert quantization_report.seed_metrics({"files": {}}) == {}
    run = make_run()
    del run["scores"]["qat_int8"]["latency_ms"]
    metrics = quantization_report.seed_metrics(run)
    assert "qat_latency_ratio" not in metrics and "qat_drop" in metrics


def test_judge_applies_the_issue_targets():
    frameworks = {
        "kopt": {"status": "ran", "runs": {"0": make_run(), "1": make_run(qat_accuracy=0.975, qat_ms=0.031)}},
        "tfmot": {"status": "ran", "runs": {"0": make_run(qat_agreement=0.99, qat_bytes=25_000, qat_step=0.030)}},
    }
    judged = {row["metric"]: row for row in quantization_report.judge(summaries_of(frameworks))}
    assert set(judged) == {"qat_drop", "qat_size_ratio", "step_ratio", "qat_latency_ratio", "qat_agreement", "ptq_drop"}
    assert judged["qat_drop"]["kopt"]["measured"] == pytest.approx(0.3)  # mean of 0.1 and 0.5 points
    assert judged["qat_drop"]["kopt"]["verdict"] == "PASS"
    assert judged["qat_latency_ratio"]["kopt"]["verdict"] == "PASS"  # mean of 0.833 and 1.033
    assert judged["qat_size_ratio"]["kopt"]["verdict"] == "PASS"  # 0.259
    assert judged["qat_size_ratio"]["tfmot"]["verdict"] == "FAIL"  # 0.294
    assert judged["step_ratio"]["tfmot"]["verdict"] == "FAIL"  # 1.5
    assert judged["qat_agreement"]["kopt"]["verdict"] == "PASS"
    assert judged["qat_agreement"]["tfmot"]["verdict"] == "FAIL"  # 99.0 < 99.5
    assert judged["ptq_drop"]["kopt"]["verdict"] == "reference"


def test_render_section_reports_every_seed_and_a_framework_that_could_not_run():
    frameworks = {
        "kopt": {
            "status": "ran",
            "reason": None,
            "versions": {"keras": "3.15.1"},
            "runs": {"0": make_run(), "1": make_run(qat_bytes=30_000)},
        },
        "tfmot": {"status": "not run", "reason": "skipped with --skip_tfmot", "versions": {}, "runs": {}},
    }
    summaries = summaries_of(frameworks)
    section = quantization_report.render_section(
        make_document(frameworks), summaries, quantization_report.judge(summaries)
    )
    assert section.startswith("## Quantization: kopt and tfmot side by side")
    assert "`python -m benchmarks.quantization --seeds=0,1`" in section
    assert "tfmot: not run (skipped with --skip_tfmot)" in section
    assert "| kopt | 0 | 0.10 PASS | 0.259 PASS | 1.200 PASS | 0.833 PASS | 99.90 PASS | 0.50 |" in section
    assert "| kopt | 1 | 0.10 PASS | 0.353 FAIL |" in section
    size_line = next(line for line in section.splitlines() if line.startswith("| QAT int8 TFLite file"))
    assert size_line.endswith("| <= 0.27 x | 0.306 FAIL | not run |")
    agreement_line = next(line for line in section.splitlines() if line.startswith("| Top-1 agreement"))
    assert "| >= 99.5 % | 99.90 PASS |" in agreement_line
    assert "| reference | 0.50 reference | not run |" in section
    for line in QuantizationSettings.full().describe():
        assert line in section
    assert "Quick smoke run" not in section


def test_render_section_marks_a_quick_run():
    frameworks = {
        "kopt": {"status": "ran", "runs": {"0": make_run()}},
        "tfmot": {"status": "not run", "reason": "skipped", "runs": {}},
    }
    summaries = summaries_of(frameworks)
    document = make_document(frameworks, quick=True)
    assert "Quick smoke run" in quantization_report.render_section(
        document, summaries, quantization_report.judge(summaries)
    )


def test_plot_writes_a_png_with_or_without_tfmot(tmp_path):
    frameworks = {
        "kopt": {"status": "ran", "runs": {"0": make_run(), "1": make_run(qat_accuracy=0.97)}},
        "tfmot": {"status": "not run", "runs": {}},
    }
    path = quantization_plot.plot(summaries_of(frameworks), str(tmp_path / "q.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# --- scoring and timing files -------------------------------------------------------


def test_score_run_and_time_files_on_a_tiny_model(tmp_path):
    keras = pytest.importorskip("keras")
    import tflite_export

    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(3)])
    images = np.random.default_rng(0).random((20, 28, 28), dtype=np.float32)
    path = tflite_export.convert(model, str(tmp_path / "m.tflite"))
    top1 = np.argmax(model.predict(images, verbose=0), axis=-1)
    labels = top1.copy()
    labels[:5] = (labels[:5] + 1) % 3
    np.save(tmp_path / "float.npy", top1)
    np.save(tmp_path / "qat.npy", (top1 + 1) % 3)
    run = {
        "files": dict.fromkeys(quantization.FILE_KINDS, path),
        "keras_top1": {"float": str(tmp_path / "float.npy"), "qat": str(tmp_path / "qat.npy")},
    }
    quantization.score_run(run, images, labels)
    assert run["scores"]["float32"]["tflite_accuracy"] == pytest.approx(0.75)
    assert run["scores"]["ptq_int8"]["agreement"] == pytest.approx(1.0)
    assert run["scores"]["qat_int8"]["agreement"] == pytest.approx(0.0)
    assert run["scores"]["qat_int8"]["keras_accuracy"] < 0.5
    settings = dataclasses.replace(QuantizationSettings.quick(), latency_runs=3, latency_warmup=1, latency_rounds=2)
    quantization.time_files([run], settings)
    for kind in quantization.FILE_KINDS:
        score = run["scores"][kind]
        assert score["latency_ms"] > 0 and score["latency_no_xnnpack_ms"] > 0
        assert len(score["latency_round_medians_ms"]["xnnpack"]) == 2


# --- flags ----------------------------------------------------------------------------


@pytest.fixture
def parsed_flags():
    def parse(*args):
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["quantization", *args])
        return flags.FLAGS

    yield parse
    flags.FLAGS.unparse_flags()


def test_flags_pick_the_settings(parsed_flags):
    assert quantization.settings_from_flags(parsed_flags()) == QuantizationSettings.full()
    assert quantization.settings_from_flags(parsed_flags("--quick")) == QuantizationSettings.quick()
    example = quantization.settings_from_flags(parsed_flags("--qat_model=tfmot_example_cnn"))
    assert example == QuantizationSettings.full("tfmot_example_cnn")


def test_a_model_other_than_the_default_writes_its_own_section():
    assert quantization.section_for("conv_bn_cnn") == "quantization"
    assert quantization.section_for("tfmot_example_cnn") == "quantization_tfmot_example_cnn"
    frameworks = {
        "kopt": {"status": "ran", "runs": {"0": make_run()}},
        "tfmot": {"status": "not run", "reason": "skipped", "runs": {}},
    }
    summaries = summaries_of(frameworks)
    document = make_document(frameworks)
    document["settings"] = QuantizationSettings.full("tfmot_example_cnn").as_dict()
    section = quantization_report.render_section(document, summaries, quantization_report.judge(summaries))
    assert section.startswith("## Quantization of tfmot_example_cnn: kopt and tfmot side by side")


@pytest.mark.parametrize("flag", ["--sparsities=0.5", "--frequency=10", "--end_step_epochs=1"])
def test_pruning_only_flags_are_refused(parsed_flags, flag):
    with pytest.raises(app.UsageError, match="flag of benchmarks.pruning"):
        quantization.settings_from_flags(parsed_flags(flag))


def test_shared_options_cut_seeds_under_quick_and_keep_benchmarks_md(parsed_flags, tmp_path):
    data = tmp_path / "d.npz"
    np.savez(data, x_train=np.zeros((1, 28, 28)), y_train=np.zeros(1), x_test=np.zeros((1, 28, 28)), y_test=np.zeros(1))
    parsed_flags("--quick", "--seeds=3,4", f"--data={data}", "--skip_tfmot", f"--output_dir={tmp_path}")
    found = harness.options_from_flags("quantization", "benchmarks.quantization")
    options, tfmot = harness.keywords_of(found), harness.tfmot_for(found.skip_tfmot)
    assert found.seeds == [3] and found.data == str(data) and options["output_dir"] == str(tmp_path)
    assert options["markdown_path"] == os.path.join(str(tmp_path), "quantization_quick.md")
    assert options["quick"] and options["command"].startswith("python -m benchmarks.quantization")
    assert not tfmot.available and tfmot.reason == "skipped with --skip_tfmot"
    parsed_flags("--seeds=x")
    with pytest.raises(app.UsageError, match="--seeds must be integers"):
        harness.options_from_flags("quantization", "benchmarks.quantization")


def test_main_refuses_positional_arguments():
    with pytest.raises(app.UsageError, match="unexpected arguments"):
        quantization.main(["quantization", "extra"])


def test_command_line_names_the_module():
    line = harness.command_line(["x", "--quick", "--seeds=0"], module="benchmarks.quantization")
    assert line == "python -m benchmarks.quantization --quick --seeds=0"


# --- process boundaries -----------------------------------------------------------------


def test_worker_imports_only_its_siblings_from_this_repository():
    # It runs under tf_keras in its own environment, where kopt does not exist.
    imported = pruning_tests._top_level_imports(os.path.join(REPO_ROOT, "benchmarks", "tfmot_quantization_worker.py"))
    assert not imported & {"kopt", "tflite_export", "benchmarks", "keras"}
    assert {"tfmot_pruning_worker", "quantization_models"} <= imported
    # Which the worker imports from its own folder: it must import nothing itself.
    assert not pruning_tests._top_level_imports(os.path.join(REPO_ROOT, "benchmarks", "quantization_models.py"))


def test_kopt_side_never_imports_tfmot():
    for name in ("quantization.py", "quantization_kopt.py", "quantization_report.py", "quantization_plot.py"):
        imported = pruning_tests._top_level_imports(os.path.join(REPO_ROOT, "benchmarks", name))
        assert not imported & {"tensorflow_model_optimization", "tf_keras"}, name
