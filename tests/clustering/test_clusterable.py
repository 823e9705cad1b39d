"""Tests for kopt.clustering.clusterable: the protocol and the built-in table."""

import keras
import numpy as np
import pytest

from kopt.clustering.clusterable import ClusterableLayer
from kopt.clustering.clusterable import get_clusterable_weights
from kopt.clustering.clusterable import is_clusterable


def _built(layer, shape):
    layer.build(shape)
    return layer


@pytest.mark.parametrize(
    "layer, shape, names",
    [
        (keras.layers.Dense(3), (None, 4), ["kernel"]),
        (keras.layers.Conv2D(3, 3), (None, 8, 8, 2), ["kernel"]),
        (keras.layers.DepthwiseConv2D(3), (None, 8, 8, 2), ["kernel"]),
        (keras.layers.SeparableConv2D(4, 3), (None, 8, 8, 2), ["depthwise_kernel", "pointwise_kernel"]),
        (keras.layers.Embedding(10, 4), (None, 3), ["embeddings"]),
        (keras.layers.LSTM(4), (None, 5, 3), ["kernel", "recurrent_kernel"]),
        (keras.layers.GRU(4), (None, 5, 3), ["kernel", "recurrent_kernel"]),
        (keras.layers.SimpleRNN(4), (None, 5, 3), ["kernel", "recurrent_kernel"]),
        (keras.layers.ConvLSTM2D(4, 3), (None, 3, 6, 6, 2), ["kernel", "recurrent_kernel"]),
        (keras.layers.TimeDistributed(keras.layers.Dense(4)), (None, 5, 3), ["kernel"]),
    ],
)
def test_built_in_layers_cluster_their_kernels_not_biases(layer, shape, names):
    pairs = get_clusterable_weights(_built(layer, shape))
    assert [name for name, _ in pairs] == names
    assert all(isinstance(variable, keras.Variable) for _, variable in pairs)


def test_attention_clusters_its_four_projection_kernels():
    layer = keras.layers.MultiHeadAttention(2, 4)
    layer(keras.KerasTensor((None, 3, 8)), keras.KerasTensor((None, 3, 8)))
    pairs = get_clusterable_weights(layer)
    assert [name for name, _ in pairs] == ["query_kernel", "key_kernel", "value_kernel", "output_kernel"]
    assert [variable for _, variable in pairs][0] is layer.query_dense.kernel


def test_protocol_layers_choose_their_weights():
    class Scale(keras.layers.Layer, ClusterableLayer):
        def build(self, shape):
            self.scale = self.add_weight(shape=(shape[-1],), name="scale")

        def call(self, x):
            return x * self.scale

        def get_clusterable_weights(self):
            return [("scale", self.scale)]

    layer = _built(Scale(), (None, 3))
    assert is_clusterable(layer) and isinstance(layer, ClusterableLayer)
    assert get_clusterable_weights(layer)[0][1] is layer.scale


def test_unsupported_and_malformed_layers_raise_naming_them():
    flatten = keras.layers.Flatten(name="flat")
    assert not is_clusterable(flatten)
    with pytest.raises(ValueError, match="'flat'.*ClusterableLayer"):
        get_clusterable_weights(flatten)

    class Bad(keras.layers.Dense):
        def get_clusterable_weights(self):
            return [self.kernel]

    with pytest.raises(ValueError, match="pairs"):
        get_clusterable_weights(_built(Bad(2, name="bad"), (None, 3)))


def test_a_conv_lstm_is_clustered_to_k_values_per_kernel():
    from kopt import clustering

    inputs = keras.Input((3, 6, 6, 2))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ConvLSTM2D(4, 3, name="clstm")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    stripped = clustering.strip_clustering(clustering.cluster_weights(model, 6))
    cell = stripped.get_layer("clstm").cell
    for kernel in (cell.kernel, cell.recurrent_kernel):
        assert len(np.unique(np.asarray(kernel.numpy()))) <= 6
