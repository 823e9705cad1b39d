"""Cached teacher logits: the teacher runs once per example, and training matches running it live."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt.distillation import Distiller
from kopt.distillation import teacher_logits
from kopt.distillation import with_teacher_logits


@keras.saving.register_keras_serializable(package="kopt_test")
class _Counting(keras.layers.Layer):
    """Identity that counts the examples it sees, in graph mode too."""

    def build(self, input_shape):
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, dtype="int64")

    def call(self, inputs):
        self.seen.assign_add(keras.ops.cast(keras.ops.shape(inputs)[0], "int64"))
        return inputs


def _models():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    counter = _Counting()
    teacher = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(16, activation="relu")(counter(inputs))))
    student = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    return student, teacher, counter


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 5)).astype("float32"), rng.integers(0, 3, size=40)


def test_array_cache_runs_the_teacher_once_and_trains_like_live():
    x, y = _data()
    student, teacher, counter = _models()
    logits = teacher_logits(teacher, x, batch_size=16)
    np.testing.assert_allclose(logits, keras.ops.convert_to_numpy(teacher(x)), rtol=1e-5)
    counter.seen.assign(0)
    distiller = Distiller(student, teacher)
    distiller.compile(keras.optimizers.SGD(0.1))
    distiller.fit(x, {"labels": y, "teacher_logits": logits}, batch_size=8, epochs=3, shuffle=False, verbose=0)
    assert int(counter.seen.numpy()) == 0  # three epochs, no teacher call
    cached_weights = student.get_weights()

    live_student, live_teacher, live_counter = _models()
    live = Distiller(live_student, live_teacher)
    live.compile(keras.optimizers.SGD(0.1))
    live.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    assert int(live_counter.seen.numpy()) == 3 * len(x)
    for cached, expected in zip(cached_weights, live_student.get_weights()):
        np.testing.assert_allclose(cached, expected, rtol=1e-5, atol=1e-6)


def test_dataset_cache_runs_the_teacher_once_per_example():
    x, y = _data()
    student, teacher, counter = _models()
    cached = with_teacher_logits(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), teacher)
    assert int(counter.seen.numpy()) == len(x)
    distiller = Distiller(student, teacher)
    distiller.compile("adam")
    distiller.fit(cached.shuffle(40, seed=0).batch(8), epochs=3, verbose=0)
    assert int(counter.seen.numpy()) == len(x)


def test_bad_inputs_are_named():
    _, teacher, _ = _models()
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        teacher_logits(teacher, np.zeros((2, 5)), batch_size=0)
    with pytest.raises(ValueError, match="Received: teacher="):
        teacher_logits("teacher.keras", np.zeros((2, 5)))
    with pytest.raises(ValueError, match="must be finite"):
        with_teacher_logits(tf.data.Dataset.from_tensor_slices((np.zeros((2, 5)), np.zeros(2))).repeat(), teacher)
    with pytest.raises(ValueError, match="Received: element_spec="):
        with_teacher_logits(tf.data.Dataset.from_tensor_slices(np.zeros((2, 5))), teacher)
