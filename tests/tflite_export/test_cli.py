"""python -m tflite_export as users run it, in a subprocess."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "tflite_export", *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=ENV
    )


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "m.keras"
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model.save(path)
    return str(path)


def test_converts_compares_and_writes_report(digits_model, tmp_path):
    result = _run(
        [digits_model, "out.tflite", "--mode=int8", "--io_type=int8", "--runs=3", "--report=r.json"], tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "optimized" in result.stdout and "size x" in result.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mode"] == "int8" and report["data"] == "digits"
    assert report["optimized"]["fully_integer"] is True
    assert report["optimized"]["agreement"] >= 0.9
    assert (tmp_path / "r.png").stat().st_size > 0 and (tmp_path / "out.tflite").stat().st_size > 0


def test_deployment_layout_flags(digits_model, tmp_path):
    result = _run(
        [
            *(digits_model, "out.tflite", "--mode=int8", "--runs=3", "--fixed_batch", "--strip_strings"),
            *("--report=r.json", "--noamx"),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from tflite_export.verify import load_interpreter

    interpreter = load_interpreter(str(tmp_path / "out.tflite"))
    assert list(interpreter.get_input_details()[0]["shape_signature"]) == [1, 8, 8, 1]
    assert interpreter.get_signature_list() == {}
    report = json.loads((tmp_path / "r.json").read_text())
    assert "SHAPE" not in report["optimized"]["op_counts"] and "SHAPE" not in report["float32"]["op_counts"]
    assert report["optimized"]["agreement"] >= 0.9
    # --noamx: both files timed with Intel AMX refused (or without it on a CPU that has none).
    from tflite_export.amx import amx_state

    expected = "absent" if amx_state() == "absent" else "refused"
    assert {report[row]["latency"]["xnnpack"]["amx"] for row in ("float32", "optimized")} == {expected}
    assert ("(Intel AMX refused)" in result.stdout) == (expected == "refused")


def test_sparse_weights_flag_stores_densify_ops_and_reports_eligibility(digits_model, tmp_path):
    result = _run([digits_model, "out.tflite", "--runs=3", "--sparse_weights", "--report=r.json"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # Dense random weights and no stem: the file is valid but not in the sparse kernels' form, and says why.
    line = next(line for line in result.stdout.splitlines() if line.startswith("XNNPACK sparse inference:"))
    assert "not eligible" in line and "no weight is stored sparsely" in line and "no stem" in line
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["sparse_inference"]["eligible"] is False and report["sparse_inference"]["sparse_tensors"] == 0
    assert report["optimized"]["agreement"] >= 0.9  # untrained: a few near-ties


@pytest.mark.parametrize(
    "make_args, expected",
    [
        (lambda m: [m], "expected MODEL.keras and OUT.tflite"),
        (lambda m: [m, "out.bin"], "OUT must end in '.tflite'"),
        (lambda m: ["missing.keras", "out.tflite"], "MODEL does not exist"),
        (lambda m: [m, "out.tflite", "--mode=int4"], "--mode"),
        (lambda m: [m, "out.tflite", "--mode=float16", "--io_type=int8"], "--io_type=int8 needs --mode=int8"),
        (lambda m: [m, "out.tflite", "--data=nonsense"], "--data=nonsense"),
        (lambda m: [m, "out.tflite", "--runs=0"], "runs"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(digits_model, tmp_path, make_args, expected):
    result = _run(make_args(digits_model), tmp_path)
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("tflite_export: error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.tflite").exists()


def test_model_and_data_shapes_must_match(tmp_path):
    path = tmp_path / "wide.keras"
    keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)]).save(path)
    result = _run([str(path), "out.tflite"], tmp_path)
    assert result.returncode == 2 and "takes inputs of shape (5,)" in result.stderr


def test_a_quantization_aware_model_file_gets_a_float_reference(tmp_path):
    # kopt-optimize saves optimized.keras with its QAT layers on; the float reference
    # file is that model without them (the command used to fail converting it in float32).
    from kopt import quantization

    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    qat = quantization.quantize_model(model)
    quantization.calibrate(qat, np.random.default_rng(0).random((16, 8, 8, 1), np.float32))
    path = str(tmp_path / "qat.keras")
    qat.save(path)
    result = _run([path, "out.tflite", "--mode=int8", "--runs=3", "--report=r.json"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["optimized"]["fully_integer"] is True and report["float32"]["fully_integer"] is False
    assert report["optimized"]["agreement"] >= 0.9 and report["float32"]["agreement"] >= 0.9


def test_a_folder_of_photos_is_resized_to_the_model_with_image_size(tmp_path):
    import tensorflow as tf

    for label in range(2):  # grey photos of 10 and 12 pixels, one folder per class
        for index in range(4):
            side = 10 + 2 * (index % 2)
            pixels = np.full((side, side, 1), 60 * label + index, np.uint8)
            path = tmp_path / "photos" / f"class{label}" / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            tf.io.write_file(str(path), tf.io.encode_png(pixels))
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.save(tmp_path / "m.keras")
    args = ["m.keras", "out.tflite", "--data=dir:photos", "--mode=float32", "--runs=1", "--report=r.json"]
    result = _run([*args, "--image_size=8,8"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "r.json").read_text())["data"] == "dir:photos"
    result = _run([*args, "--image_size=12"], tmp_path)
    assert result.returncode == 2 and "has (12, 12, 1); --image_size=8,8 resizes the images" in result.stderr
