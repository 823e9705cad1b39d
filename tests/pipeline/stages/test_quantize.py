"""The qat and ptq stages: checks, export options, and a QAT run through the driver."""

import pytest

from kopt import ConfigError
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
    [({}, "ptq.mode"), ({"mode": "int4"}, "ptq.mode"), ({"mode": "dynamic", "io_type": "uint8"}, "ptq.io_type")],
)
def test_ptq_check_rejects_bad_params(params, key):
    with pytest.raises(ConfigError) as err:
        get_technique("ptq").check(params)
    assert err.value.key == key


@pytest.mark.parametrize(
    "scheme, io_type, mode",
    [("8bit", "int8", "int8"), ("4bit", "uint8", "int8"), ("16x8", "float32", "int16x8")],
)
def test_qat_export_options_follow_the_scheme(scheme, io_type, mode):
    options = get_technique("qat").export_options({"scheme": scheme, "io_type": io_type})
    assert options == {"mode": mode, "inference_input_type": io_type, "inference_output_type": io_type}


def test_ptq_leaves_the_model_alone_and_exports_in_its_mode():
    technique = get_technique("ptq")
    model = object()
    assert technique.apply(model, None, {"mode": "float16"}) is model
    assert technique.export_options({"mode": "float16"})["mode"] == "float16"


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
