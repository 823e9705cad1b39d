"""Soft targets and the softened KL divergence against NumPy, and SoftTargetKL's saving."""

import keras
import numpy as np
import pytest

from kopt.distillation import SoftTargetKL
from kopt.distillation import soft_targets
from kopt.distillation import softened_kl_divergence
from kopt.testing import run_serialization_test


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_soft_targets_flatten_with_temperature():
    logits = np.array([[4.0, 1.0, 0.0]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(soft_targets(logits, 3.0)), _softmax(logits / 3.0), rtol=1e-6)
    cold, hot = (keras.ops.convert_to_numpy(soft_targets(logits, t))[0, 0] for t in (1.0, 8.0))
    assert cold > hot > 1 / 3


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_softened_kl_matches_numpy_and_scales_by_t_squared(temperature):
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(size=(5, 4)) * 3, rng.normal(size=(5, 4))
    p, q = _softmax(teacher / temperature), _softmax(student / temperature)
    expected = (p * np.log(p / q)).sum(-1) * temperature**2
    actual = keras.ops.convert_to_numpy(softened_kl_divergence(teacher, student, temperature))
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_softened_kl_stays_finite_where_probabilities_underflow():
    teacher = keras.ops.convert_to_tensor(np.array([[200.0, -200.0, 0.0]], "float32"))
    student = keras.ops.convert_to_tensor(np.array([[-200.0, 200.0, 0.0]], "float32"))
    values = keras.ops.convert_to_numpy(softened_kl_divergence(teacher, student, 1.0))
    assert np.all(np.isfinite(values)) and values[0] > 100


def test_gradient_reaches_student_only():
    import tensorflow as tf

    teacher, student = tf.Variable([[1.0, 0.0]]), tf.Variable([[0.0, 1.0]])
    with tf.GradientTape() as tape:
        loss = softened_kl_divergence(teacher, student, 2.0)
    teacher_grad, student_grad = tape.gradient(loss, [teacher, student])
    assert teacher_grad is None and np.abs(student_grad.numpy()).sum() > 0


@pytest.mark.parametrize("temperature", [0, -1.0, "2", True])
def test_bad_temperature_is_named(temperature):
    with pytest.raises(ValueError, match="Received: temperature="):
        softened_kl_divergence(np.zeros((1, 2)), np.zeros((1, 2)), temperature)


def test_soft_target_kl_loss_averages_and_serializes():
    loss = SoftTargetKL(temperature=3.0)
    teacher, student = np.array([[2.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 2.0], [0.0, 0.0]])
    per_example = keras.ops.convert_to_numpy(softened_kl_divergence(teacher, student, 3.0))
    np.testing.assert_allclose(float(loss(teacher, student)), per_example.mean(), rtol=1e-6)
    restored = run_serialization_test(loss, init_kwargs={"temperature": 3.0})
    assert restored.temperature == 3.0
