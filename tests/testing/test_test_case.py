"""The harness must pass good classes and catch the mistakes it exists to catch."""

import keras
import numpy as np
import pytest

from kopt.testing import TestCase
from kopt.testing import run_layer_test
from kopt.testing import run_model_saving_test
from kopt.testing import run_serialization_test


@keras.saving.register_keras_serializable(package="kopt_harness_test")
class Scale(keras.layers.Layer):
    """A layer with one trainable weight and one constructor argument."""

    def __init__(self, initial=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial = initial

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.initial), name="scale")

    def call(self, inputs):
        return inputs * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "initial": self.initial}


@keras.saving.register_keras_serializable(package="kopt_harness_test")
class ForgetsConfig(Scale):
    """Forgets its constructor argument in get_config: the classic tfmot bug."""

    def get_config(self):
        config = super().get_config()
        del config["initial"]
        return config


class Unregistered(Scale):
    pass


@keras.saving.register_keras_serializable(package="kopt_harness_test")
class NoGradient(Scale):
    """Its weight never reaches the output, so training cannot change it."""

    def call(self, inputs):
        return inputs + 0.0 * keras.ops.stop_gradient(self.scale)


def test_layer_test_passes_a_correct_layer():
    layer = run_layer_test(
        Scale,
        {"initial": 2.0},
        np.ones((4, 3), np.float32),
        expected_output_shape=(4, 3),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
        required_package="kopt_harness_test",
    )
    assert layer.initial == 2.0


def test_serialization_test_catches_a_forgotten_argument():
    with pytest.raises(AssertionError, match="initial"):
        run_serialization_test(
            ForgetsConfig(initial=3.0), init_kwargs={"initial": 3.0}, required_package="kopt_harness_test"
        )


def test_serialization_test_requires_kopt_registration_by_default():
    with pytest.raises(AssertionError, match="not registered under package 'kopt'"):
        run_serialization_test(Scale(initial=3.0))


def test_unregistered_class_fails_json_round_trip():
    with pytest.raises(Exception):
        run_serialization_test(Unregistered(initial=3.0), required_package=None)


def test_layer_test_catches_wrong_shape_and_weight_counts():
    data = np.ones((2, 3), np.float32)
    with pytest.raises(AssertionError, match="output shape"):
        run_layer_test(Scale, {}, data, expected_output_shape=(2, 4), required_package="kopt_harness_test")
    with pytest.raises(AssertionError, match="trainable weights"):
        run_layer_test(Scale, {}, data, expected_num_trainable_weights=2, required_package="kopt_harness_test")


def test_layer_test_catches_a_layer_gradients_do_not_reach():
    with pytest.raises(AssertionError, match="gradients do not reach"):
        run_layer_test(NoGradient, {}, np.ones((2, 3), np.float32), required_package="kopt_harness_test")


def test_model_saving_test_round_trips_a_model():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, Scale(1.5)(keras.layers.Dense(2)(inputs)))
    data = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    loaded = run_model_saving_test(model, data)
    np.testing.assert_allclose(loaded(data), model(data), atol=1e-6)


class HarnessAsTestCase(TestCase):
    def test_methods_delegate(self):
        restored = self.run_serialization_test(keras.layers.Dense(4), required_package=None)
        self.assertEqual(restored.units, 4)
