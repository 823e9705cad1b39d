"""Tests for kopt.pruning.flops: FLOPs per example of conv and dense layers."""

import keras
import pytest

from kopt.pruning.flops import count_flops
from kopt.pruning.flops import layer_flops


def _flops_of(layer, input_shape):
    model = keras.Sequential([keras.Input(input_shape), layer])
    return layer_flops(model)[layer.name]


def test_dense_counts_two_flops_per_weight_per_position():
    assert _flops_of(keras.layers.Dense(5, name="d"), (7,)) == 2 * 7 * 5
    assert _flops_of(keras.layers.Dense(5, name="d"), (3, 7)) == 2 * 3 * 7 * 5


def test_conv_counts_output_positions_and_groups():
    # 10x10 input, 3x3 kernel, stride 2, valid padding -> 4x4 outputs.
    assert _flops_of(keras.layers.Conv2D(8, 3, strides=2, name="c"), (10, 10, 4)) == 2 * 3 * 3 * 4 * 8 * 16
    assert _flops_of(keras.layers.Conv2D(8, 3, groups=2, name="c"), (6, 6, 4)) == 2 * 3 * 3 * 2 * 8 * 16
    assert _flops_of(keras.layers.Conv1D(6, 3, padding="same", name="c"), (9, 2)) == 2 * 3 * 2 * 6 * 9


def test_depthwise_separable_and_transpose():
    assert _flops_of(keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="d"), (6, 6, 4)) == 2 * 9 * 4 * 2 * 16
    separable = keras.layers.SeparableConv2D(5, 3, depth_multiplier=2, name="s")
    assert _flops_of(separable, (6, 6, 4)) == 2 * (9 * 4 * 2 + 8 * 5) * 16
    assert _flops_of(keras.layers.Conv2DTranspose(5, 3, name="t"), (4, 4, 2)) == 2 * 9 * 2 * 5 * 16


def test_other_layers_count_zero_and_nested_models_are_prefixed():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="inner_dense")], name="inner")
    inputs = keras.Input((4,))
    x = keras.layers.BatchNormalization(name="bn")(inputs)
    model = keras.Model(inputs, inner(x))
    assert layer_flops(model)["bn"] == 0
    assert layer_flops(model)["inner/inner_dense"] == 24
    assert count_flops(model) == 24


def test_dynamic_spatial_shape_is_refused():
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3, name="c")])
    with pytest.raises(ValueError, match="layer 'c': its spatial shape"):
        count_flops(model)


@pytest.mark.parametrize(("layer_class", "gates"), [("LSTM", 4), ("GRU", 3), ("SimpleRNN", 1)])
def test_recurrent_layers_count_both_kernels_at_every_step(layer_class, gates):
    layer = getattr(keras.layers, layer_class)(6, name="rnn")
    assert _flops_of(layer, (5, 3)) == 2 * 5 * (3 + 6) * gates * 6
    both = keras.layers.Bidirectional(getattr(keras.layers, layer_class)(6), name="bi")
    assert _flops_of(both, (5, 3)) == 2 * 2 * 5 * (3 + 6) * gates * 6


def test_recurrent_layer_on_a_sequence_of_unknown_length_is_refused():
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(4, name="rnn")])
    with pytest.raises(ValueError, match="layer 'rnn' .*no static number of timesteps"):
        count_flops(model)
