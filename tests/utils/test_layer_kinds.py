"""Tests for kopt.utils.layer_kinds: the layers compression leaves alone by design, and recurrent directions."""

import keras
import pytest

from kopt.utils.layer_kinds import is_left_alone_by_design


@pytest.mark.parametrize(
    "layer, expected",
    [
        (keras.layers.BatchNormalization(), True),
        (keras.layers.LayerNormalization(), True),
        (keras.layers.GroupNormalization(groups=1), True),
        (keras.layers.Normalization(), True),
        (keras.layers.PReLU(), True),
        (keras.layers.Dense(2), False),
        (keras.layers.Conv2D(2, 3), False),
        (keras.layers.DepthwiseConv2D(3), False),
        (keras.layers.LSTM(2), False),
    ],
)
def test_normalization_and_prelu_are_left_alone_and_weight_layers_are_not(layer, expected):
    assert is_left_alone_by_design(layer) is expected


def test_recurrent_directions_find_the_layers_that_run_inside():
    from kopt.utils.layer_kinds import recurrent_directions

    lstm = keras.layers.LSTM(2)
    assert recurrent_directions(lstm) == [lstm]
    both = keras.layers.Bidirectional(keras.layers.GRU(2))
    assert recurrent_directions(both) == [both.forward_layer, both.backward_layer]
    other = keras.layers.Bidirectional(keras.layers.RNN(keras.layers.LSTMCell(2)))
    assert recurrent_directions(other) == [] and recurrent_directions(keras.layers.Dense(2)) == []
