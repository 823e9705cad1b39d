"""Distilling binary classifiers that output one logit: the loss is the two-class one, not zero."""

import keras
import numpy as np
import pytest

from kopt.distillation import Distiller


def _binary(width, *, seed, scores=1, activation=None, name=None):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(width, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(scores, activation=activation, name="score")(hidden), name=name)


def _data(n=32):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 5)).astype("float32"), rng.integers(0, 2, size=n)


def _binary_kl(teacher_logit, student_logit, temperature):
    """T^2 * KL(Bernoulli(sigmoid(t / T)) || Bernoulli(sigmoid(s / T))), per example."""
    p = 1 / (1 + np.exp(-teacher_logit / temperature))
    q = 1 / (1 + np.exp(-student_logit / temperature))
    return (p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))) * temperature**2


def _logs(distiller, x, y):
    distiller.compile(keras.optimizers.SGD(0.0))  # the logged losses are those of the weights before the step
    return {key: values[0] for key, values in distiller.fit(x, y, batch_size=32, epochs=1, verbose=0).history.items()}


def test_one_logit_soft_loss_is_the_binary_kl_and_the_hard_loss_binary_cross_entropy():
    student, teacher = _binary(2, seed=1), _binary(8, seed=2)
    x, y = _data()
    s, t = (keras.ops.convert_to_numpy(model(x))[:, 0] for model in (student, teacher))
    logs = _logs(Distiller(student, teacher, alpha=0.4, temperature=3.0), x, y)
    soft = _binary_kl(t.astype("float64"), s.astype("float64"), 3.0).mean()
    hard = np.mean(np.logaddexp(0, s) - y * s)  # binary cross-entropy from the logit
    assert soft > 1e-3  # a softmax over the one column would make it 0 whatever the models predict
    np.testing.assert_allclose([logs["distillation_loss"], logs["student_loss"]], [soft, hard], rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], 0.4 * hard + 0.6 * soft, rtol=1e-4)


def test_hard_distillation_of_one_logit_takes_the_teachers_sign():
    student, teacher = _binary(2, seed=1), _binary(8, seed=2)
    x, y = _data()
    s, t = (keras.ops.convert_to_numpy(model(x))[:, 0] for model in (student, teacher))
    teacher_labels = (t > 0).astype("float64")
    assert 0 < teacher_labels.mean() < 1
    logs = _logs(Distiller(student, teacher, alpha=0.5, distillation="hard"), x, y)
    np.testing.assert_allclose(logs["distillation_loss"], np.mean(np.logaddexp(0, s) - teacher_labels * s), rtol=1e-4)


def test_a_one_logit_teacher_teaches_a_two_logit_student():
    student, teacher = _binary(2, seed=1, scores=2), _binary(8, seed=2)
    x, y = _data()
    s, t = (keras.ops.convert_to_numpy(model(x)).astype("float64") for model in (student, teacher))
    logs = _logs(Distiller(student, teacher, alpha=0.0, temperature=2.0), x, y)
    # The student's two logits [a, b] give class 1 the probability sigmoid(b - a).
    np.testing.assert_allclose(logs["distillation_loss"], _binary_kl(t[:, 0], s[:, 1] - s[:, 0], 2.0).mean(), rtol=1e-4)


def test_a_sigmoid_ending_is_refused_as_a_softmax_is():
    with pytest.raises(ValueError, match=r"the teacher ends in a sigmoid\. Remove the sigmoid"):
        Distiller(_binary(2, seed=1), _binary(8, seed=2, activation="sigmoid"))
    with pytest.raises(ValueError, match="must predict the same classes"):
        Distiller(_binary(2, seed=1, scores=3), _binary(8, seed=2))
