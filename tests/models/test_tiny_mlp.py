"""The tiny MLP: a student under a tenth of small_cnn on MNIST-sized images."""

import keras
import numpy as np
import pytest

from kopt.models import BUILTIN_MODELS
from kopt.models import get_model
from kopt.models import small_cnn
from kopt.models import tiny_mlp


def test_under_a_tenth_of_small_cnn_on_mnist_and_outputs_logits():
    model = tiny_mlp((28, 28, 1), 10)
    assert model.count_params() == 28 * 28 * 28 + 28 + 28 * 10 + 10
    assert model.count_params() * 10 <= small_cnn((28, 28, 1), 10).count_params()
    assert model.layers[-1].activation is keras.activations.linear
    assert model(np.zeros((2, 28, 28, 1), "float32")).shape == (2, 10)


def test_units_set_the_hidden_width():
    model = tiny_mlp((8, 8, 3), 4, units=5)
    assert model.get_layer("hidden").units == 5
    assert model.count_params() == 8 * 8 * 3 * 5 + 5 + 5 * 4 + 4


def test_registered_as_a_builtin():
    assert BUILTIN_MODELS["tiny_mlp"] is tiny_mlp
    assert get_model("tiny_mlp", (8, 8, 1), 10).name == "tiny_mlp"


@pytest.mark.parametrize(
    "kwargs, match",
    [({"input_shape": (8, 8)}, "input_shape="), ({"num_classes": 1}, "num_classes=1"), ({"units": 0}, "units=0")],
)
def test_bad_arguments_are_named(kwargs, match):
    args = {"input_shape": (8, 8, 1), "num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        tiny_mlp(**args)
