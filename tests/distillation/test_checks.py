"""Tests for kopt.distillation.checks: each error names the model or argument and its value."""

import keras
import pytest

from kopt.distillation import checks


def _model(units, name, activation=None):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(units)(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation=activation)(hidden), name=name)


def test_valid_pair_passes():
    checks.check_models(_model(2, "student"), _model(16, "teacher"), allow_larger_student=False)


def test_a_student_that_augments_its_own_input_is_warned_about(recwarn):
    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.GlobalAveragePooling2D()(keras.layers.RandomFlip(name="flip")(inputs))
    student = keras.Model(inputs, keras.layers.Dense(3)(hidden), name="augmenting")
    teacher = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(16)(hidden)), name="teacher")
    with pytest.warns(UserWarning, match=r"student 'augmenting' holds augmentation layers \('flip' \(RandomFlip\)\)"):
        checks.check_models(student, teacher, allow_larger_student=False)
    checks.check_models(_model(2, "student"), _model(16, "teacher"), allow_larger_student=False)
    assert not [w for w in recwarn if "augmentation" in str(w.message)]


def test_swapped_models_are_named():
    with pytest.raises(ValueError, match="student=.*'big'.*teacher=.*'small'|swapped"):
        checks.check_models(_model(16, "big"), _model(2, "small"), allow_larger_student=False)
    checks.check_models(_model(16, "big"), _model(2, "small"), allow_larger_student=True)


def test_softmax_output_is_refused():
    with pytest.raises(ValueError, match="softmax.*teacher='probs'"):
        checks.check_models(_model(2, "student"), _model(16, "probs", "softmax"), allow_larger_student=False)


def test_same_model_twice_is_refused():
    model = _model(2, "only")
    with pytest.raises(ValueError, match="same model"):
        checks.check_models(model, model, allow_larger_student=True)


def test_different_classes_are_refused():
    inputs = keras.Input((4,))
    five = keras.Model(inputs, keras.layers.Dense(5)(inputs), name="five")
    with pytest.raises(ValueError, match="same classes"):
        checks.check_models(_model(1, "student"), five, allow_larger_student=True)


def test_feature_layers():
    assert checks.check_feature_layers(None) == []
    assert checks.check_feature_layers([["t", "s"]]) == [("t", "s")]
    with pytest.raises(ValueError, match=r"feature_layers='t'"):
        checks.check_feature_layers("t")
    with pytest.raises(ValueError, match="Received: feature_layers"):
        checks.check_feature_layers([("t", 3)])
