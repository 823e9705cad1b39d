"""The tiny CNN: a student at most a tenth of small_cnn, for any image size small_cnn takes."""

import keras
import numpy as np
import pytest

from kopt.models import BUILTIN_MODELS
from kopt.models import get_model
from kopt.models import small_cnn
from kopt.models import tiny_cnn


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (8, 8, 1), (2, 2, 1)])
def test_a_tenth_of_small_cnn_and_outputs_logits(shape):
    model = tiny_cnn(shape, 10)
    assert model.output_shape == (None, 10)
    assert model.count_params() * 10 <= small_cnn(shape, 10).count_params()
    assert model.layers[-1].activation is keras.activations.linear
    assert model(np.zeros((2, *shape), "float32")).shape == (2, 10)


def test_registered_as_a_builtin():
    assert BUILTIN_MODELS["tiny_cnn"] is tiny_cnn
    assert get_model("tiny_cnn", (8, 8, 1), 10).name == "tiny_cnn"


@pytest.mark.parametrize(
    "kwargs, match", [({"input_shape": (8, 8)}, "input_shape="), ({"num_classes": 1}, "num_classes=1")]
)
def test_bad_arguments_are_named(kwargs, match):
    args = {"input_shape": (8, 8, 1), "num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        tiny_cnn(**args)
