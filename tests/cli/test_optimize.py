"""kopt-optimize as users run it: the installed console script, in a subprocess (its refusals of bad input in process)."""

import json
import os
import subprocess
import sys

import keras
import pytest

from tests.cli.in_process import is_refused
from tests.cli.in_process import refused

SCRIPT = os.path.join(os.path.dirname(sys.executable), "kopt-optimize")
REPORT_KEYS = {"keras_accuracy", "tflite_accuracy", "tflite_bytes", "tflite_gzip_bytes", "params", "sparsity"}


def _run(args, cwd, timeout=600):
    if not os.path.isfile(SCRIPT):
        pytest.fail(f"{SCRIPT} is missing: install kopt (pip install -e '.[cpu,test]') before testing")
    return subprocess.run([SCRIPT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_no_flags_runs_end_to_end_on_digits_and_shows_compression(tmp_path):
    result = _run(["--report=report.json"], cwd=tmp_path)  # the README's first command
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    assert "baseline" in table and "optimized" in table and "tflite acc" in table
    for name in ("baseline.keras", "optimized.keras", "baseline.tflite", "optimized.tflite"):
        assert (tmp_path / "kopt_export" / name).stat().st_size > 0
    assert "Traceback" not in result.stderr
    # Quiet by default: TensorFlow's and LiteRT's native chatter is filtered out, kopt's progress stays.
    for noise in ("oneDNN", "NodeDef mentions", "XNNPACK delegate", "fully_quantize", "InitializeLog"):
        assert noise not in result.stderr, noise
    assert "Applying technique prune" in result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    baseline, optimized = report["baseline"], report["optimized"]
    # The default run prunes and quantizes: the bar is 0.35x the gzip size for at most a point.
    assert report["techniques"] == ["prune", "qat"] and optimized["tflite_mode"] == "int8"
    assert optimized["tflite_gzip_bytes"] <= 0.35 * baseline["tflite_gzip_bytes"]
    assert optimized["tflite_accuracy"] >= baseline["tflite_accuracy"] - 0.01


@pytest.mark.slow
def test_techniques_none_trains_and_exports_the_float_model_only(tmp_path):
    result = _run(["--techniques=none", "--epochs=1", "--report=r.json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["techniques"] == [] and report["optimized"]["tflite_mode"] == "float32"


@pytest.mark.slow
def test_report_json_has_the_promised_keys_and_honest_numbers(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    result = _run(["--techniques=none", "--epochs=2", "--export_dir=out", "--report=r.json", "--seed=3"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["dataset"]["name"] == "digits" and report["techniques"] == []
    for row in ("baseline", "optimized"):
        assert REPORT_KEYS <= set(report[row])
        assert 0.0 <= report[row]["tflite_accuracy"] <= 1.0
        assert report[row]["tflite_bytes"] == os.path.getsize(report[row]["tflite_path"])
    assert report["recipe"]["epochs"] == 2 and report["recipe"]["seed"] == 3
    assert (tmp_path / "r.png").stat().st_size > 0
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep me"


def _non_classifier(tmp_path):
    path = str(tmp_path / "regressor.keras")
    keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1)]).save(path)
    return path


_TYPO_YAML = "epochs: 1\nepocs: 2"
_CLUSTER_YAML = "techniques:\n  - name: cluster\n    params: {number_of_clusters: 0}"
_PRUNE_YAML = "epochs: 1\ntechniques:\n  - name: prune\n    params: {{target_sparsity: {}}}"


def _recipe(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return str(path)


def _junk_model(tmp_path):
    path = tmp_path / "junk.keras"
    path.write_text("not a model")
    return str(path)


@pytest.mark.parametrize(
    "make_args, expected",
    [
        (lambda tmp: ["--dataset=imagenet_please"], "--dataset=imagenet_please: unknown dataset"),
        (lambda tmp: [f"--dataset=npz:{tmp}/absent.npz"], "--dataset=npz:{tmp}/absent.npz: file not found"),
        (lambda tmp: [f"--model={_junk_model(tmp)}"], "--model={tmp}/junk.keras: not a loadable Keras model"),
        (lambda tmp: [f"--model={_non_classifier(tmp)}"], "--model={tmp}/regressor.keras: is not a classifier"),
        (lambda tmp: ["--model=resnet"], "--model=resnet: not a built-in model"),
        (lambda tmp: ["--epochs=-2"], "--epochs=-2: must be at least 0"),
        (
            lambda tmp: ["--epochs=0", "--warmup_epochs=1"],
            "--warmup_epochs=1: with epochs=0 the model is used as given",
        ),
        (lambda tmp: ["--epochs=0", "--tune=random"], "--epochs=0: the search tunes float training"),
        (lambda tmp: ["--epochs=0", "--distill"], "--epochs=0: the student trains from scratch for --epochs"),
        (lambda tmp: ["--batch_size=-5"], "--batch_size=-5: must be at least 1"),
        (lambda tmp: ["--learning_rate=-1"], "--learning_rate=-1.0: must be a finite number above 0"),
        (lambda tmp: ["--seed=-1"], "--seed=-1: must be at least 0"),
        (lambda tmp: ["--report=r.txt"], "--report=r.txt: must be a path ending in .json"),
        (lambda tmp: ["--epochs=abc"], "--epochs=abc"),
        (lambda tmp: ["--no_such_flag=1"], "no_such_flag"),
        (lambda tmp: ["extra"], "unexpected arguments ['extra']"),
        (lambda tmp: ["--prune=1.5"], "--prune=1.5: must be a fraction in (0, 1)"),
        (lambda tmp: ["--prune=0"], "--prune=0.0: must be a fraction in (0, 1)"),
        (lambda tmp: ["--sparsity_m_by_n=2x4"], "--sparsity_m_by_n=2x4: must be two integers M,N"),
        (lambda tmp: ["--sparsity_m_by_n=4,2"], "--sparsity_m_by_n=4,2: must be two integers M,N with 0 < M < N"),
        (lambda tmp: ["--prune=0.8", "--sparsity_m_by_n=2,4"], "--prune=0.8: a 2:4 pattern fixes sparsity at 0.5"),
        (lambda tmp: ["--prune_schedule=cubic"], "--prune_schedule=cubic"),
        (lambda tmp: ["--prune_structured=1"], "--prune_structured=1.0: must be a fraction in (0, 1)"),
        (lambda tmp: ["--prune=0.5", "--finetune_epochs=0"], "--finetune_epochs=0: fine-tuning needs"),
        (lambda tmp: ["--prune=0.5", "--finetune_learning_rate=-1"], "--finetune_learning_rate=-1.0: must be"),
        (lambda tmp: ["--qat", "--ptq=int8"], "--ptq=int8: choose --qat or --ptq, not both"),
        (lambda tmp: ["--ptq=float16", "--quantized_io=int8"], "--quantized_io=int8: integer inputs/outputs need int8"),
        (lambda tmp: ["--qat", "--qat_scheme=16x8", "--quantized_io=uint8"], "--quantized_io=uint8: integer"),
        (lambda tmp: ["--qat_scheme=2bit"], "--qat_scheme"),
        (lambda tmp: ["--ptq=int4"], "--ptq"),
        (lambda tmp: ["--optimizer=lamb"], "--optimizer"),
        (lambda tmp: ["--optimizer=adam", "--momentum=0.9"], "--momentum=0.9: only momentum, nesterov, rmsprop"),
        (lambda tmp: ["--weight_decay=-1"], "--weight_decay=-1.0: must be at least 0"),
        (lambda tmp: ["--lr_schedule=linear"], "--lr_schedule"),
        (lambda tmp: ["--warmup_epochs=10"], "--warmup_epochs=10: must be fewer than the 10"),
        (lambda tmp: ["--batch_norm_batches=-1"], "--batch_norm_batches=-1: must be at least 0"),
        (lambda tmp: ["--mixed_precision=fp8"], "--mixed_precision"),
        (lambda tmp: ["--early_stopping_patience=2", "--validation_split=0"], "--validation_split=0.0: the plateau"),
        (lambda tmp: ["--validation_split=1.5"], "--validation_split=1.5: must be a fraction in (0, 1)"),
        (lambda tmp: ["--distillation=hard"], "--distillation=hard: only means something with --distill"),
        (lambda tmp: ["--tune=grid"], "--tune"),
        (lambda tmp: ["--max_trials=3"], "--max_trials=3: only means something with --tune"),
        (lambda tmp: ["--tune=random", "--max_trials=0"], "--max_trials=0: must be an integer of at least 1"),
        (lambda tmp: ["--max_accuracy_drop=0.3"], "--max_accuracy_drop=0.3: only means something with --auto"),
        (lambda tmp: ["--auto", "--max_accuracy_drop=-1"], "--max_accuracy_drop=-1.0: must be a number of accuracy"),
        (
            lambda tmp: ["--auto", "--target_sparsity=0.8", "--target_gzip_kb=8"],
            "--target_gzip_kb=8.0: conflicts with target_sparsity=0.8",
        ),
        (lambda tmp: ["--auto", "--time_budget=0"], "--time_budget=0.0: must be a number of seconds above 0"),
        (lambda tmp: ["--auto", "--auto_calibration=tflite"], "--auto_calibration=tflite: must be one of kopt"),
        (lambda tmp: ["--auto", "--prune=0.8"], "--prune=0.8: conflicts with --auto"),
        (lambda tmp: ["--recipe=absent.yaml"], "--recipe=absent.yaml: file not found"),
        (lambda tmp: ["--recipe=" + _recipe(tmp, _TYPO_YAML)], "r.yaml: epocs=2: unknown recipe key"),
        (lambda tmp: ["--recipe=" + _recipe(tmp, "epochs: [1")], "not valid YAML"),
        (
            lambda tmp: [f"--recipe={_recipe(tmp, _PRUNE_YAML.format(1.2))}"],
            "r.yaml: techniques[0].params.target_sparsity=1.2: must be a fraction in (0, 1)",
        ),
        (lambda tmp: [f"--recipe={_recipe(tmp, _PRUNE_YAML.format(0.5))}", "--prune=1.5"], "--prune=1.5: must be a"),
        (
            lambda tmp: [f"--recipe={_recipe(tmp, _PRUNE_YAML.format(0.5))}", "--cluster=8"],
            "--cluster=8: the recipe file has no cluster stage",
        ),
        (
            lambda tmp: ["--recipe=" + _recipe(tmp, _CLUSTER_YAML)],
            "techniques[0].params.number_of_clusters=0: must be an integer of at least 2",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_no_traceback(tmp_path, monkeypatch, make_args, expected):
    # In process (tests/cli/in_process.py); the console script's own refusal is tested below.
    is_refused(refused(make_args(tmp_path), tmp_path, monkeypatch), expected, tmp_path)


def test_the_console_script_refuses_bad_input_in_one_line_exit_2(tmp_path):
    result = _run(["--seed=-1"], cwd=tmp_path)
    assert "Traceback" not in result.stderr
    is_refused(result, "--seed=-1: must be at least 0", tmp_path)


def test_verbosity_1_shows_the_traceback(tmp_path):
    result = _run(["--dataset=imagenet_please", "--verbosity=1"], cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


@pytest.mark.slow
def test_prune_flags_report_sparsity_of_the_stripped_model(tmp_path):
    args = ["--prune=0.8", "--epochs=2", "--finetune_epochs=2", "--report=r.json"]
    result = _run(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["techniques"] == ["prune"]
    assert report["recipe"]["techniques"][0]["params"]["target_sparsity"] == 0.8
    assert abs(report["optimized"]["sparsity"] - 0.8) < 0.005
    assert report["optimized"]["tflite_gzip_bytes"] < 0.5 * report["baseline"]["tflite_gzip_bytes"]


@pytest.mark.slow
def test_qat_flag_exports_a_fully_integer_file_that_agrees(tmp_path):
    import tflite_export

    args = ["--qat", "--quantized_io=int8", "--epochs=2", "--finetune_epochs=1", "--report=r.json"]
    result = _run(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    optimized = report["optimized"]
    assert report["techniques"] == ["qat"]
    assert optimized["tflite_mode"] == "int8" and optimized["tflite_io_types"] == ["int8", "int8"]
    assert optimized["tflite_agreement"] >= 0.995
    assert abs(optimized["tflite_accuracy"] - optimized["keras_accuracy"]) <= 0.003
    assert optimized["tflite_bytes"] < 0.35 * report["baseline"]["tflite_bytes"]
    inspection = tflite_export.inspect(optimized["tflite_path"])
    integer, reasons = tflite_export.is_fully_integer(inspection)
    assert integer, reasons
    assert inspection["inputs"][0]["dtype"] == "int8"


@pytest.mark.slow
def test_ptq_dynamic_flag_needs_no_retraining(tmp_path):
    result = _run(["--ptq=dynamic", "--epochs=1", "--report=r.json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["techniques"] == ["ptq"]
    assert "technique_ptq" in report["timings_s"] and report["timings_s"]["technique_ptq"] < 1.0
    assert report["optimized"]["tflite_mode"] == "dynamic"
    assert report["optimized"]["tflite_bytes"] < 0.4 * report["baseline"]["tflite_bytes"]


@pytest.mark.slow
def test_prune_cluster_qat_flags_compose_with_preserving_qat(tmp_path):
    import numpy as np

    from tflite_export.flatbuffer import TFLiteFlatbuffer

    args = ["--prune=0.8", "--cluster=16", "--qat", "--epochs=1", "--finetune_epochs=1", "--report=r.json"]
    result = _run(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["techniques"] == ["prune", "cluster", "qat"]
    params = {spec["name"]: spec["params"] for spec in report["recipe"]["techniques"]}
    assert params["cluster"]["number_of_clusters"] == 16 and params["cluster"]["preserve_sparsity"] is True
    assert params["qat"]["preserve"] == ["sparsity", "clusters"]
    flatbuffer = TFLiteFlatbuffer(report["optimized"]["tflite_path"])
    kernels = [
        flatbuffer.values(flatbuffer.stored_source(op.inputs[1]))
        for op in flatbuffer.ops
        if op.name in ("CONV_2D", "FULLY_CONNECTED")
    ]
    assert kernels and all(kernel.dtype == np.int8 for kernel in kernels)
    assert all(len(np.unique(kernel)) <= 16 for kernel in kernels)
    assert all(np.mean(kernel == 0) >= 0.79 for kernel in kernels)


def test_bad_cluster_flag_is_one_line_exit_2(tmp_path, monkeypatch):
    is_refused(refused(["--cluster=1"], tmp_path, monkeypatch), "--cluster=1:", tmp_path)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--distill", "--alpha=2"], "--alpha=2.0: must be a number in [0, 1]"),
        (["--distill", "--temperature=0"], "--temperature=0.0: must be a finite number above 0"),
        (["--distill", "--student=resnet"], "--student=resnet: must be a built-in model"),
        (["--distill", "--student=absent.keras"], "--student=absent.keras: file not found"),
        (["--distill", "--teacher=absent.keras"], "--teacher=absent.keras: file not found"),
        (["--teacher=t.keras"], "--teacher=t.keras: only means something with --distill"),
    ],
)
def test_bad_distill_flags_are_one_line_exit_2(tmp_path, monkeypatch, args, expected):
    is_refused(refused(args, tmp_path, monkeypatch), expected, tmp_path)


@pytest.mark.slow
def test_distill_then_qat_exports_the_int8_student(tmp_path):
    args = ["--distill", "--qat", "--epochs=2", "--finetune_epochs=1", "--temperature=4", "--report=r.json"]
    result = _run(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["techniques"] == ["distill", "qat"]
    params = report["recipe"]["techniques"][0]["params"]
    assert params["student"] == "tiny_cnn" and params["temperature"] == 4.0 and params["teacher"] is None
    optimized = report["optimized"]
    assert optimized["tflite_mode"] == "int8" and optimized["tflite_agreement"] >= 0.98
    assert optimized["params"] * 10 <= report["baseline"]["params"]


@pytest.mark.slow
def test_a_recipe_file_run_repeats_exactly_from_its_report(tmp_path):
    """Same seed, same bytes: the report's recipe reruns the run, on CPU, bit for bit."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "epochs: 2\noptimizer: nesterov\nlearning_rate: 0.05\nlr_schedule: cosine\nwarmup_epochs: 1\n"
        "mixed_precision: mixed_bfloat16\nseed: 7\n"
        "techniques:\n  - name: prune\n    params: {target_sparsity: 0.75, epochs: 2, lr_schedule: plateau}\n"
    )
    first = _run([f"--recipe={recipe}", "--export_dir=a", "--report=a.json"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    second = _run(["--recipe=a.json", "--export_dir=b", "--report=b.json"], cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    reports = [json.loads((tmp_path / name).read_text()) for name in ("a.json", "b.json")]
    recipes = [{k: v for k, v in r["recipe"].items() if k not in ("export_dir", "report")} for r in reports]
    assert recipes[0] == recipes[1]
    assert recipes[0]["validation_split"] == 0.1 and recipes[0]["optimizer"] == "nesterov"
    assert reports[0]["seed"] == 7 and reports[0]["versions"]["keras"] == keras.__version__
    for row in ("baseline", "optimized"):
        assert reports[0][row]["keras_accuracy"] == reports[1][row]["keras_accuracy"]
        assert reports[0][row]["tflite_accuracy"] == reports[1][row]["tflite_accuracy"]
        assert (tmp_path / "a" / f"{row}.tflite").read_bytes() == (tmp_path / "b" / f"{row}.tflite").read_bytes()
    assert reports[0]["optimized"]["sparsity"] == pytest.approx(0.75, abs=0.005)


@pytest.mark.slow
def test_auto_keeps_the_smallest_int8_model_within_budget_and_reports_its_front(tmp_path):
    args = ["--auto", "--max_accuracy_drop=3", "--epochs=4", "--finetune_epochs=2", "--report=r.json"]
    result = _run(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["techniques"] == ["auto"]
    assert report["recipe"]["validation_split"] > 0  # chosen on validation, never on the test split
    auto = report["auto"]
    assert len(auto["pareto"]) >= 2 and auto["pareto"][0]["step"] == 0
    assert auto["best"]["step"] >= 1, auto["message"]
    optimized = report["optimized"]
    assert optimized["tflite_mode"] == "int8"
    assert optimized["sparsity"] == pytest.approx(auto["best"]["sparsity"], abs=0.02)
    assert optimized["tflite_gzip_bytes"] < 0.35 * report["baseline"]["tflite_gzip_bytes"]
    assert (tmp_path / "kopt_export" / "auto" / "state.json").is_file()


@pytest.mark.slow
def test_sigterm_backs_up_exits_143_and_the_same_command_resumes(tmp_path):
    import signal
    import time

    args = [SCRIPT, "--epochs=40", "--prune=0.5", "--finetune_epochs=2", "--report=r.json"]
    process = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    backups = tmp_path / "kopt_export" / ".kopt_resume"
    deadline = time.monotonic() + 300
    # Wait until the baseline has backed up an epoch: training is well under way.
    while not list(backups.glob("*/baseline/training-0/checkpoint")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
        time.sleep(0.2)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-3000:]
    assert time.monotonic() - signalled < 30
    assert "kopt-optimize: preempted: Stopped by SIGTERM" in stderr and "Run the same command again" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "r.json").exists()

    resumed = _run(args[1:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming small_cnn from its backup" in resumed.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["techniques"] == ["prune"] and report["optimized"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert not backups.exists()  # a finished run leaves no backups behind


def test_the_log_filter_goes_by_kopts_package_folders_not_by_path_text():
    import logging as std_logging

    import kopt
    from kopt.cli import optimize

    def record(path):
        return std_logging.LogRecord("absl", std_logging.INFO, path, 1, "message", None, None)

    inside = os.path.join(os.path.dirname(kopt.__file__), "pipeline", "execution.py")
    assert optimize._only_kopt_info(record(inside))
    # A virtual environment inside a clone named kopt: TensorFlow's lines are not kopt's.
    assert not optimize._only_kopt_info(record("/home/me/kopt/.venv/lib/site-packages/tensorflow/x.py"))
    warning = record("/somewhere/tensorflow/x.py")
    warning.levelno = std_logging.WARNING
    assert optimize._only_kopt_info(warning)  # everyone's warnings stay
