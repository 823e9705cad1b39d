"""The qat and ptq stages: checks, export options, and a QAT run through the driver."""

import json
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver

import tflite_export
from kopt import ConfigError
from kopt import quantization
from kopt.cli import optimize  # noqa: F401 - defines the flags
from kopt.cli import stage_flags
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import get_technique
from kopt.pipeline import run


@pytest.mark.parametrize(
    "params, key",
    [
        ({"scheme": "2bit"}, "qat.scheme"),
        ({"io_type": "int4"}, "qat.io_type"),
        ({"scheme": "16x8", "io_type": "int8"}, "qat.io_type"),
        ({"epochs": 0}, "qat.epochs"),
        ({"learning_rate": -1.0}, "qat.learning_rate"),
    ],
)
def test_qat_check_rejects_bad_params(params, key):
    with pytest.raises(ConfigError) as err:
        get_technique("qat").check(params)
    assert err.value.key == key


@pytest.mark.parametrize(
    "params, key",
    [
        ({}, "ptq.mode"),
        ({"mode": "int4"}, "ptq.mode"),
        ({"mode": "dynamic", "io_type": "uint8"}, "ptq.io_type"),
        ({"mode": "int8", "calibration": "tflite"}, "ptq.calibration"),
        ({"mode": "dynamic", "calibration": "kopt"}, "ptq.calibration"),
        ({"mode": "float16", "calibration": "converter"}, "ptq.calibration"),
        ({"mode": "int16x8", "calibration": "kopt"}, "ptq.calibration"),
        # The converter calibrates these modes and would quantize a layer left in float.
        ({"mode": "int8", "calibration": "converter", "float_layers": ["stem"]}, "ptq.float_layers"),
        ({"mode": "int16x8", "float_layers": ["stem"]}, "ptq.float_layers"),
        ({"mode": "dynamic", "float_layers": ["stem"]}, "ptq.float_layers"),
    ],
)
def test_ptq_check_rejects_bad_params(params, key):
    with pytest.raises(ConfigError) as err:
        get_technique("ptq").check(params)
    assert err.value.key == key


@pytest.mark.parametrize(
    "scheme, io_type, mode", [("8bit", "int8", "int8"), ("4bit", "uint8", "int8"), ("16x8", "float32", "int16x8")]
)
def test_qat_export_options_follow_the_scheme(scheme, io_type, mode):
    options = get_technique("qat").export_options({"scheme": scheme, "io_type": io_type})
    assert options == {"mode": mode, "inference_input_type": io_type, "inference_output_type": io_type}


@pytest.mark.parametrize(
    "params",
    [{"mode": "float16"}, {"mode": "dynamic"}, {"mode": "int16x8"}, {"mode": "int8", "calibration": "converter"}],
)
def test_ptq_leaves_the_model_alone_when_the_export_calibrates(params):
    technique = get_technique("ptq")
    technique.check(params)
    model = object()
    assert technique.apply(model, None, params) is model
    assert technique.export_options(params)["mode"] == params["mode"]


def _context(count=64):
    images = np.random.default_rng(0).uniform(0.0, 1.0, size=(count, 8, 8, 1)).astype("float32")
    labels = np.zeros((count,), "int64")
    return types.SimpleNamespace(train=tf.data.Dataset.from_tensor_slices((images, labels)).batch(16))


def _small_cnn():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x), name="small")


def test_ptq_int8_calibrates_a_quantization_aware_copy_on_the_training_data():
    technique = get_technique("ptq")
    model = _small_cnn()
    params = {"mode": "int8"}
    technique.check(params)
    calibrated = technique.apply(model, _context(), params)
    wrappers = [layer for layer in calibrated.layers if isinstance(layer, quantization.QuantizeWrapper)]
    assert {wrapper.layer.name for wrapper in wrappers} >= {model.layers[1].name, model.layers[3].name}
    # Calibration set the input's range from the data (uniform in [0, 1]); a fresh quantizer has none.
    ranges = [layer for layer in calibrated.layers if isinstance(layer, quantization.QuantizeLayer)]
    low, high = (float(ranges[0]._ranges[key].numpy()) for key in ("min", "max"))
    assert low <= 0.0 and 0.9 < high <= 1.0
    # No training: the weights are the float model's.
    np.testing.assert_array_equal(wrappers[0].layer.kernel.numpy(), model.layers[1].kernel.numpy())


class _Scale(keras.layers.Layer):
    """A layer kopt has no quantization rule for."""

    def build(self, shape):
        self.scale = self.add_weight(shape=(shape[-1],), initializer=keras.initializers.RandomUniform(0.5, 2.0))

    def call(self, x):
        return x * self.scale


def _model_with_custom_layer():
    # A front end, as an audio model's spectrogram: it reads the model's input.
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(_Scale(name="my_scale")(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(x)))


def test_ptq_int8_names_the_layer_kopt_cannot_quantize_and_the_way_out():
    with pytest.raises(ConfigError) as err:
        get_technique("ptq").apply(_model_with_custom_layer(), _context(), {"mode": "int8"})
    assert err.value.key == "ptq.calibration"
    message = str(err.value)
    assert "my_scale" in message and "--ptq_calibration=converter" in message
    assert "--ptq_float_layers=my_scale" in message


def test_ptq_int8_float_layers_leave_the_named_layer_float_in_the_file(tmp_path):
    technique = get_technique("ptq")
    params = {"mode": "int8", "float_layers": ["my_scale"]}
    technique.check(params)
    model = _model_with_custom_layer()
    calibrated = technique.apply(model, _context(), params)
    options = technique.export_options(params)
    assert options["representative_dataset"] is None  # the converter would quantize my_scale after all
    path = tflite_export.convert(calibrated, str(tmp_path / "ptq.tflite"), **options)
    integer, reasons = tflite_export.is_fully_integer(tflite_export.inspect(path))
    assert not integer and reasons and all(reason.startswith("op 0 MUL") for reason in reasons), reasons
    images = np.random.default_rng(1).uniform(0.0, 1.0, size=(32, 8, 8, 1)).astype("float32")
    result = tflite_export.verify(path, calibrated, (images, np.zeros(32, "int64")))
    assert result["max_abs_diff"] < 0.05 and result["agreement"] >= 0.95


def test_ptq_float_layers_misspelt_fails_before_any_training(tmp_path):
    recipe = Recipe(
        epochs=1,
        export_dir=str(tmp_path / "out"),
        techniques=(TechniqueSpec("ptq", {"mode": "int8", "float_layers": ["Conv1"]}),),
    )
    with pytest.raises(ConfigError) as err:
        run(recipe)
    assert err.value.key == "ptq.float_layers" and "['Conv1']" in str(err.value)
    assert not (tmp_path / "out").exists()  # raised before the baseline trained


def test_ptq_float_layers_flag_takes_comma_separated_names():
    with flagsaver.as_parsed(ptq="int8", ptq_float_layers="mel, conv"):
        (ptq,) = stage_flags.techniques_from_flags(flags.FLAGS)
    assert ptq.params["float_layers"] == ["mel", "conv"]


@pytest.mark.slow
def test_qat_after_pruning_keeps_accuracy_and_exports_int8(tmp_path):
    recipe = Recipe(
        epochs=3,
        export_dir=str(tmp_path),
        techniques=(
            TechniqueSpec("prune", {"target_sparsity": 0.5, "epochs": 2}),
            TechniqueSpec("qat", {"epochs": 1, "preserve": ["sparsity"]}),
        ),
    )
    report = run(recipe)
    optimized = report["optimized"]
    assert report["techniques"] == ["prune", "qat"]
    assert optimized["sparsity"] >= 0.49  # a stage after pruning must say what it keeps; this one keeps the zeros
    assert optimized["tflite_mode"] == "int8"
    assert optimized["tflite_agreement"] >= 0.995
    assert optimized["keras_accuracy"] >= report["baseline"]["keras_accuracy"] - 0.05


@pytest.mark.slow
def test_ptq_int8_through_the_driver_keeps_the_float_models_predictions(tmp_path):
    recipe = Recipe(epochs=2, export_dir=str(tmp_path), techniques=(TechniqueSpec("ptq", {"mode": "int8"}),))
    report = run(recipe)
    baseline, optimized = report["baseline"], report["optimized"]
    assert optimized["tflite_mode"] == "int8"
    # The file computes what the calibrated model computes...
    assert optimized["tflite_agreement"] >= 0.995
    # ...which stays close to the float model it was calibrated from.
    assert abs(optimized["tflite_accuracy"] - baseline["keras_accuracy"]) <= 0.01
    assert optimized["tflite_bytes"] < 0.35 * baseline["tflite_bytes"]


def test_qat_float_layers_misspelt_fails_before_any_training(tmp_path):
    recipe = Recipe(
        epochs=1,
        export_dir=str(tmp_path / "out"),
        techniques=(TechniqueSpec("qat", {"epochs": 1, "float_layers": ["Conv1"]}),),
    )
    with pytest.raises(ConfigError) as err:
        run(recipe)
    assert err.value.key == "qat.float_layers" and "['Conv1']" in str(err.value)
    assert not (tmp_path / "out").exists()  # raised before the baseline trained


@pytest.mark.slow
def test_qat_float_layers_leaves_the_first_convolution_float_through_the_driver(tmp_path):
    recipe = Recipe(
        epochs=1, export_dir=str(tmp_path), techniques=(TechniqueSpec("qat", {"epochs": 1, "float_layers": ["conv1"]}),)
    )
    report = run(recipe)
    optimized = report["optimized"]
    assert optimized["tflite_mode"] == "int8" and optimized["tflite_agreement"] >= 0.99
    integer, reasons = tflite_export.is_fully_integer(tflite_export.inspect(report["files"]["optimized_tflite"]))
    assert not integer and all(reason.startswith("op 0 CONV_2D") for reason in reasons), reasons


def test_qat_float_layers_flag_takes_comma_separated_names():
    with flagsaver.as_parsed(qat="true", qat_float_layers="Conv1, Logits"):
        (qat,) = stage_flags.techniques_from_flags(flags.FLAGS)
    assert qat.params["float_layers"] == ["Conv1", "Logits"]
    with flagsaver.as_parsed(qat="true"):
        (qat,) = stage_flags.techniques_from_flags(flags.FLAGS)
    assert "float_layers" not in qat.params  # the default: a fully integer file


@pytest.mark.slow
def test_qat_float_layers_after_distillation_are_checked_on_the_student(tmp_path):
    # conv3 is a layer of the recipe's small_cnn, not of the tiny_cnn student QAT receives.
    recipe = Recipe(
        epochs=1,
        export_dir=str(tmp_path),
        techniques=(
            TechniqueSpec("distill", {"student": "tiny_cnn"}),
            TechniqueSpec("qat", {"epochs": 1, "float_layers": ["conv3"]}),
        ),
    )
    with pytest.raises(ConfigError) as err:
        run(recipe)
    assert err.value.key == "qat.float_layers" and "conv3" in str(err.value)


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"float_prefix": True, "float_layers": ["conv1"]}, "float_layers=['conv1']"),
        ({"float_prefix": True, "io_type": "int8"}, "io_type='int8'"),
        ({"float_prefix": True, "scheme": "16x8"}, "not 16x8"),
    ],
)
def test_qat_float_prefix_refuses_chosen_float_layers_and_integer_io(params, needle):
    with pytest.raises(ConfigError) as err:
        get_technique("qat").check(params)
    assert err.value.key == "qat.float_prefix" and needle in str(err.value)


def test_qat_float_prefix_flag_sets_the_param_and_the_export_leaves_calibration_to_the_model():
    with flagsaver.as_parsed(qat="true", qat_float_prefix="true"):
        (qat,) = stage_flags.techniques_from_flags(flags.FLAGS)
    assert qat.params["float_prefix"] is True
    assert get_technique("qat").export_options(qat.params)["representative_dataset"] is None
    with flagsaver.as_parsed(qat="true"):
        (qat,) = stage_flags.techniques_from_flags(flags.FLAGS)
    assert "float_prefix" not in qat.params  # the default: a fully integer file


@pytest.mark.slow
def test_qat_float_prefix_through_the_driver_leaves_the_planned_front_in_float(tmp_path, monkeypatch):
    planned = {}
    real_plan = quantization.plan_float_prefix

    def plan(model, data, **options):
        # Every prefix of the small CNN may be tried, and the longest is taken, so the file shows it.
        planned.update(real_plan(model, data, max_float_share=1.0, rounds=1, calls=3, **options))
        planned["float_layers"] = quantization.float_prefix._prefix(model, planned["candidates"][-1]["cut"])
        return planned

    monkeypatch.setattr(quantization, "plan_float_prefix", plan)
    recipe = Recipe(
        epochs=1, export_dir=str(tmp_path), techniques=(TechniqueSpec("qat", {"epochs": 1, "float_prefix": True}),)
    )
    report = run(recipe)
    assert planned["float_layers"] and report["optimized"]["tflite_agreement"] >= 0.99
    integer, reasons = tflite_export.is_fully_integer(tflite_export.inspect(report["files"]["optimized_tflite"]))
    assert not integer and reasons
    # The plan, every candidate timed, is in the run's report (JSON-ready), not only in the log.
    entry = report["qat"]["float_prefix"]
    assert entry["float_layers"] == planned["float_layers"] and entry["candidates"] == planned["candidates"]
    assert json.loads(json.dumps(entry)) == entry
