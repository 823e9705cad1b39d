"""The distill stage where the recipe's model scales its own pixels: every model of the run reads 0-255 values."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.data import load_dataset
from kopt.models import pixel_scaling_layer
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import run
from tests.pipeline.stages.test_distill import _refused_before_training

L = keras.layers


def _digits_cnn(path, *, scales, filters=16, name="scaling_teacher"):
    """A CNN for the 8x8 digits, saved untrained; with ``scales`` it begins with ``Rescaling(1/255)``."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = L.Rescaling(1 / 255, name="scale")(inputs) if scales else inputs
    x = L.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv")(x)
    x = L.Flatten()(x)
    keras.Model(inputs, L.Dense(10, name=f"{name}_head")(x), name=name).save(path)
    return str(path)


@pytest.mark.slow
def test_a_builtin_student_reads_the_pixel_values_its_scaling_teacher_reads(tmp_path):
    teacher = _digits_cnn(tmp_path / "teacher.keras", scales=True)
    recipe = Recipe(
        model=teacher,
        epochs=4,
        learning_rate=0.01,
        export_dir=str(tmp_path / "out"),
        techniques=(TechniqueSpec("distill", {"student": "tiny_cnn", "epochs": 6, "learning_rate": 0.01}),),
    )
    report = run(recipe)
    assert report["input_pixels"]["range"] == [0, 255] and report["dataset"]["fed_as_pixels"] is True
    student = keras.models.load_model(report["files"]["optimized_keras"])
    assert student.name == "tiny_cnn" and pixel_scaling_layer(student).name == "pixel_scaling"
    assert report["optimized"]["keras_accuracy"] > 0.6, report["optimized"]  # 10 classes: trained
    # The student's file takes the pixel values the teacher's does, as the application gives them.
    _, test, _ = load_dataset("digits")
    images, labels = (np.concatenate(part) for part in zip(*((x.numpy(), y.numpy()) for x, y in test)))
    predicted = tflite_export.predict(report["files"]["optimized_tflite"], images * 255).argmax(axis=-1)
    assert np.mean(predicted == labels) == pytest.approx(report["optimized"]["tflite_accuracy"])


def _refused(tmp_path, monkeypatch, model, params):
    return _refused_before_training(tmp_path, monkeypatch, (TechniqueSpec("distill", params),), model=model)


def test_a_student_file_that_does_not_scale_is_refused_beside_a_scaling_teacher(tmp_path, monkeypatch):
    teacher = _digits_cnn(tmp_path / "teacher.keras", scales=True)
    student = _digits_cnn(tmp_path / "student.keras", scales=False, filters=2, name="student")
    err = _refused(tmp_path, monkeypatch, teacher, {"student": student})
    assert err.key == "distill.student" and err.value == student
    assert "0-255 pixel values" in err.reason and "Rescaling(1/255)" in err.reason


def test_a_scaling_student_file_is_refused_beside_a_teacher_fed_unit_images(tmp_path, monkeypatch):
    student = _digits_cnn(tmp_path / "student.keras", scales=True, filters=2, name="student")
    err = _refused(tmp_path, monkeypatch, "small_cnn", {"student": student})
    assert err.key == "distill.student" and "'scale'" in err.reason and "twice" in err.reason


@pytest.mark.parametrize("recipe_scales", [True, False])
def test_a_teacher_file_built_for_the_other_range_is_refused(tmp_path, monkeypatch, recipe_scales):
    model = _digits_cnn(tmp_path / "model.keras", scales=recipe_scales, name="model")
    teacher = _digits_cnn(tmp_path / "teacher.keras", scales=not recipe_scales, filters=32, name="teacher")
    err = _refused(tmp_path, monkeypatch, model, {"teacher": teacher})
    assert err.key == "distill.teacher" and err.value == teacher


def test_a_student_file_that_scales_as_its_teacher_is_accepted(tmp_path, monkeypatch):
    from kopt.pipeline import execution

    teacher = _digits_cnn(tmp_path / "teacher.keras", scales=True)
    student = _digits_cnn(tmp_path / "student.keras", scales=True, filters=2, name="student")

    class Trained(Exception):
        pass

    def reached_training(*args, **kwargs):
        raise Trained

    monkeypatch.setattr(execution, "train_classifier", reached_training)
    with pytest.raises(Trained):  # every check passed: the run went on to train the baseline
        run(
            Recipe(
                model=teacher,
                epochs=1,
                export_dir=str(tmp_path / "out"),
                techniques=(TechniqueSpec("distill", {"student": student}),),
            )
        )
