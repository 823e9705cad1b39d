"""The distill stage: its checks, and a run through the driver that returns the trained student."""

import keras
import pytest

from kopt import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import get_technique
from kopt.pipeline import run


@pytest.mark.parametrize(
    "params, key",
    [
        ({"student": "resnet"}, "distill.student"),
        ({"teacher": "teacher.h5"}, "distill.teacher"),
        ({"teacher": "missing.keras"}, "distill.teacher"),
        ({"temperature": 0.0}, "distill.temperature"),
        ({"alpha": 1.5}, "distill.alpha"),
        ({"epochs": 0}, "distill.epochs"),
        ({"learning_rate": -1.0}, "distill.learning_rate"),
        ({"distillation": "medium"}, "distill.distillation"),
    ],
)
def test_check_names_the_bad_param(params, key):
    with pytest.raises(ConfigError) as err:
        get_technique("distill").check(params)
    assert err.value.key == key


@pytest.mark.slow
def test_distill_trains_the_student_from_the_baseline_and_exports_it(tmp_path):
    recipe = Recipe(
        epochs=2,
        export_dir=str(tmp_path),
        techniques=(TechniqueSpec("distill", {"epochs": 8, "learning_rate": 0.01, "temperature": 4.0, "alpha": 0.1}),),
    )
    report = run(recipe)
    optimized = keras.models.load_model(report["files"]["optimized_keras"])
    baseline = keras.models.load_model(report["files"]["baseline_keras"])
    assert optimized.name == "tiny_cnn" and baseline.name == "small_cnn"
    assert optimized.count_params() * 10 <= baseline.count_params()
    assert report["optimized"]["tflite_mode"] == "float32"
    assert report["optimized"]["tflite_bytes"] < report["baseline"]["tflite_bytes"] / 5
    assert report["optimized"]["keras_accuracy"] > 0.5  # 10 classes: trained, far above chance


def test_a_teacher_smaller_than_the_student_is_refused_as_swapped(tmp_path):
    from kopt.models import tiny_cnn

    path = str(tmp_path / "teacher.keras")
    tiny_cnn((8, 8, 1), 10).save(path)
    recipe = Recipe(
        epochs=1,
        export_dir=str(tmp_path / "out"),
        techniques=(TechniqueSpec("distill", {"teacher": path, "student": "small_cnn", "epochs": 1}),),
    )
    with pytest.raises(ConfigError) as err:
        run(recipe)
    assert err.value.key == "distill.student" and "swapped" in err.value.reason


@pytest.mark.parametrize(
    "write, reason",
    [
        (lambda path: open(path, "wb").write(b"not a zip archive"), "not"),
        (
            lambda path: keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]).save(
                path
            ),
            "3",
        ),
    ],
)
def test_a_teacher_that_cannot_serve_is_refused_before_the_baseline_trains(tmp_path, monkeypatch, write, reason):
    from kopt.pipeline import execution

    path = str(tmp_path / "teacher.keras")
    write(path)

    def no_training(*args, **kwargs):
        raise AssertionError("the baseline trained before the teacher was checked")

    monkeypatch.setattr(execution, "train_classifier", no_training)
    recipe = Recipe(
        epochs=1, export_dir=str(tmp_path / "out"), techniques=(TechniqueSpec("distill", {"teacher": path}),)
    )
    with pytest.raises(ConfigError) as err:
        run(recipe)
    assert err.value.key == "distill.teacher" and reason in err.value.reason
    assert not (tmp_path / "out").exists()
