"""Tests for kopt.utils.layer_kinds: the layers compression leaves alone by design."""

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
