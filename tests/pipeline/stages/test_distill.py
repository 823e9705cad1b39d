"""The distill stage: its checks, and a run through the driver that returns the trained student."""

import keras
import pytest

from kopt import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import get_technique
from kopt.pipeline import run

L = keras.layers


@pytest.mark.parametrize(
    "params, key",
    [
        ({"student": "resnet"}, "distill.student"),
        ({"student": "student.h5"}, "distill.student"),
        ({"student": "missing.keras"}, "distill.student"),
        ({"student": None}, "distill.student"),
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
    path = str(tmp_path / "teacher.keras")
    write(path)
    err = _refused_before_training(tmp_path, monkeypatch, (TechniqueSpec("distill", {"teacher": path}),))
    assert err.key == "distill.teacher" and reason in err.reason


def _refused_before_training(tmp_path, monkeypatch, techniques, model="small_cnn"):
    """The ConfigError of running ``techniques`` on ``model``; fails if the baseline trained first or a folder was left."""
    from kopt.pipeline import execution

    def no_training(*args, **kwargs):
        raise AssertionError("the baseline trained before the files were checked")

    monkeypatch.setattr(execution, "train_classifier", no_training)
    with pytest.raises(ConfigError) as err:
        run(Recipe(model=model, epochs=1, export_dir=str(tmp_path / "out"), techniques=techniques))
    assert not (tmp_path / "out").exists()
    return err.value


def _rows_model(units, name, path):
    """An LSTM over the rows of the 8x8 digits, saved untrained at ``path``."""
    inputs = keras.Input((8, 8), name="rows")
    hidden = keras.layers.LSTM(units, name=f"{name}_lstm")(inputs)
    keras.Model(inputs, keras.layers.Dense(10, name=f"{name}_head")(hidden), name=name).save(path)
    return str(path)


@pytest.mark.slow
def test_a_student_file_is_distilled_from_a_sequence_teacher_and_exports_int8(tmp_path):
    """The built-in students take images; a student of the user's own reads what the teacher reads."""
    teacher = _rows_model(32, "teacher", tmp_path / "teacher.keras")
    student = _rows_model(8, "student", tmp_path / "student.keras")
    recipe = Recipe(
        model=teacher,
        epochs=3,
        learning_rate=0.01,
        export_dir=str(tmp_path / "out"),
        techniques=(TechniqueSpec("distill", {"student": student, "epochs": 3}), TechniqueSpec("qat", {"epochs": 1})),
    )
    report = run(recipe)
    optimized = keras.models.load_model(report["files"]["optimized_keras"])
    assert optimized.name == "student" and optimized.input_shape == (None, 8, 8)
    assert report["optimized"]["params"] * 5 < report["baseline"]["params"]
    assert report["optimized"]["tflite_mode"] == "int8" and report["optimized"]["tflite_agreement"] >= 0.9
    assert report["optimized"]["keras_accuracy"] > 0.3  # 10 classes: trained, far above chance


@pytest.mark.parametrize(
    "student, techniques, key, reason",
    [
        # Reads rows, but the CNN teacher's digits keep their channel axis.
        (lambda path: _rows_model(4, "rows", path), (), "distill.student", "must read the same examples"),
        (
            lambda path: keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]).save(
                path
            ),
            (),
            "distill.student",
            "output shape (3,)",
        ),
        (lambda path: open(path, "wb").write(b"not a zip archive"), (), "distill.student", "not a loadable"),
        # Larger than the (untrained) baseline teacher: usually swapped models, known before training.
        (
            lambda path: keras.Sequential(
                [keras.Input((8, 8, 1)), L.Conv2D(512, 3, padding="same"), L.Flatten(), L.Dense(10)]
            ).save(path),
            (),
            "distill.student",
            "swapped",
        ),
        # Later stages' layer names are checked on the student, not on the teacher.
        (
            lambda path: keras.Sequential(
                [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, name="head")]
            ).save(path),
            (TechniqueSpec("qat", {"float_layers": ["conv1"]}),),
            "qat.float_layers",
            "conv1",
        ),
    ],
)
def test_a_student_file_that_cannot_serve_is_refused_before_the_baseline_trains(
    tmp_path, monkeypatch, student, techniques, key, reason
):
    path = str(tmp_path / "student.keras")
    student(path)
    err = _refused_before_training(tmp_path, monkeypatch, (TechniqueSpec("distill", {"student": path}), *techniques))
    assert err.key == key and reason in err.reason
