"""Tests for kopt.pruning.prunable: the built-in table and the PrunableLayer protocol."""

import keras
import pytest

from kopt.pruning.prunable import PrunableLayer
from kopt.pruning.prunable import get_prunable_weights
from kopt.pruning.prunable import is_prunable


def _built(layer, *shapes):
    layer.build(*shapes)
    return layer


@pytest.mark.parametrize(
    "layer, shapes, expected",
    [
        (keras.layers.Dense(4), [(None, 3)], ["kernel"]),
        (keras.layers.EinsumDense("ab,bc->ac", output_shape=4), [(None, 3)], ["kernel"]),
        (keras.layers.Conv1D(4, 3), [(None, 8, 2)], ["kernel"]),
        (keras.layers.Conv2D(4, 3), [(None, 8, 8, 2)], ["kernel"]),
        (keras.layers.Conv3D(4, 3), [(None, 5, 5, 5, 2)], ["kernel"]),
        (keras.layers.Conv2DTranspose(4, 3), [(None, 8, 8, 2)], ["kernel"]),
        (keras.layers.DepthwiseConv2D(3), [(None, 8, 8, 2)], ["kernel"]),
        (keras.layers.SeparableConv2D(4, 3), [(None, 8, 8, 2)], ["pointwise_kernel"]),
        (keras.layers.Embedding(10, 4), [(None, 5)], ["embeddings"]),
        (keras.layers.LSTM(4), [(None, 5, 3)], ["kernel", "recurrent_kernel"]),
        (keras.layers.GRU(4), [(None, 5, 3)], ["kernel", "recurrent_kernel"]),
        (keras.layers.SimpleRNN(4), [(None, 5, 3)], ["kernel", "recurrent_kernel"]),
        (keras.layers.ConvLSTM2D(4, 3), [(None, 3, 6, 6, 2)], ["kernel", "recurrent_kernel"]),
        (keras.layers.TimeDistributed(keras.layers.Dense(4)), [(None, 5, 3)], ["kernel"]),
        (keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3)), [(None, 5, 8, 8, 2)], ["kernel"]),
    ],
)
def test_built_in_layers_prune_their_kernels(layer, shapes, expected):
    assert is_prunable(layer)
    weights = get_prunable_weights(_built(layer, *shapes))
    assert [w.name for w in weights] == expected
    assert all(isinstance(w, keras.Variable) for w in weights)


@pytest.mark.parametrize("inner", [keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN])
def test_bidirectional_recurrent_layers_prune_both_directions(inner):
    layer = keras.layers.Bidirectional(inner(4))
    assert is_prunable(layer)  # decided before it is built
    weights = get_prunable_weights(_built(layer, (None, 5, 3)))
    assert [("forward" if "/forward_" in w.path else "backward", w.name) for w in weights] == [
        ("forward", "kernel"), ("forward", "recurrent_kernel"), ("backward", "kernel"), ("backward", "recurrent_kernel"),
    ]  # fmt: skip
    assert not is_prunable(keras.layers.Bidirectional(keras.layers.RNN(keras.layers.LSTMCell(4))))


def test_multi_head_attention_prunes_its_four_projections():
    layer = _built(keras.layers.MultiHeadAttention(2, 4), (None, 5, 8), (None, 5, 8))
    paths = [w.path.split("/", 1)[1] for w in get_prunable_weights(layer)]
    assert paths == ["query/kernel", "key/kernel", "value/kernel", "attention_output/kernel"]


def test_layers_without_support_are_refused_with_the_protocol_named():
    layer = keras.layers.BatchNormalization(name="bn")
    assert not is_prunable(layer)
    assert not is_prunable(keras.layers.TimeDistributed(keras.layers.BatchNormalization()))
    with pytest.raises(ValueError, match=r"'bn' of class BatchNormalization.*PrunableLayer"):
        get_prunable_weights(_built(layer, (None, 3)))


def test_protocol_by_subclassing_and_by_duck_typing():
    class Mixin(keras.layers.Dense, PrunableLayer):
        def get_prunable_weights(self):
            return [self.kernel]

    class DuckTyped(keras.layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],), name="scale")

        def call(self, inputs):
            return inputs * self.scale

        def get_prunable_weights(self):
            return [self.scale]

    class Forgetful(keras.layers.Dense, PrunableLayer):
        pass

    assert isinstance(Mixin(2), PrunableLayer) and is_prunable(Mixin(2))
    assert isinstance(DuckTyped(), PrunableLayer) and is_prunable(DuckTyped())
    assert [w.name for w in get_prunable_weights(_built(DuckTyped(), (None, 3)))] == ["scale"]
    with pytest.raises(TypeError, match="get_prunable_weights"):
        Forgetful(2)


def test_protocol_results_are_checked():
    class ReturnsTensor(keras.layers.Dense):
        def get_prunable_weights(self):
            return [self.kernel * 2]

    with pytest.raises(ValueError, match="not a keras.Variable"):
        get_prunable_weights(_built(ReturnsTensor(2), (None, 3)))
