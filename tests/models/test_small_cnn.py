"""The built-in small CNN."""

import keras
import numpy as np
import pytest

from kopt.models import small_cnn


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3), (2, 2, 1)])
def test_output_is_logits_of_num_classes(shape):
    model = small_cnn(shape, 7)
    out = model(np.zeros((3,) + shape, np.float32))
    assert out.shape == (3, 7)
    assert model.layers[-1].activation is keras.activations.linear


def test_has_conv_and_dense_layers_for_every_technique():
    kinds = {type(layer).__name__ for layer in small_cnn((8, 8, 1), 10).layers}
    assert {"Conv2D", "Dense", "MaxPooling2D", "Flatten"} <= kinds


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (8, 8), "num_classes": 10}, "input_shape"),
        ({"input_shape": (1, 8, 1), "num_classes": 10}, "at least 2x2"),
        ({"input_shape": (8, 8, 1), "num_classes": 1}, "num_classes=1"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_cnn(**kwargs)
