"""The new weights of the widened layer and of the layers reading it."""

import keras
import numpy as np
import pytest

from kopt.transfer.widen_weights import consumer_kernel
from kopt.transfer.widen_weights import reader_weights
from kopt.transfer.widen_weights import widened_weights


def _built(layer, shape):
    layer.build(shape)
    rng = np.random.default_rng(0)
    layer.set_weights([rng.normal(size=v.shape).astype("float32") for v in layer.weights])
    return layer


def test_the_widened_layer_copies_columns_and_bias():
    dense = _built(keras.layers.Dense(3), (None, 2))
    mapping = np.array([0, 1, 2, 2, 0])
    kernel, bias = widened_weights(dense, mapping, rng=np.random.default_rng(0), noise_stddev=0.0)
    np.testing.assert_array_equal(kernel, dense.kernel.numpy()[:, mapping])
    np.testing.assert_array_equal(bias, dense.bias.numpy()[mapping])


def test_consumer_rows_are_copied_and_divided():
    kernel = np.ones((3, 3, 2, 4))
    result = consumer_kernel(kernel, positions=np.array([0, 1, 1]), divisor=np.array([1.0, 2.0, 2.0]))
    assert result.shape == (3, 3, 3, 4) and result[..., 1, :].max() == 0.5 and result[..., 0, :].min() == 1


def test_depthwise_and_separable_readers_repeat_by_the_multiplier():
    depthwise = _built(keras.layers.DepthwiseConv2D(3, depth_multiplier=2), (None, 5, 5, 2))
    positions = np.array([0, 1, 1])
    kernel, bias = reader_weights(depthwise, "depthwise", positions=positions, divisor=np.ones(3), old_size=2)
    assert kernel.shape == (3, 3, 3, 2) and bias.tolist() == depthwise.bias.numpy()[[0, 1, 2, 3, 2, 3]].tolist()
    separable = _built(keras.layers.SeparableConv2D(4, 3, depth_multiplier=2), (None, 5, 5, 2))
    depth, point, _ = reader_weights(
        separable, "producer", positions=positions, divisor=np.array([1.0, 2.0, 2.0]), old_size=2
    )
    assert depth.shape == (3, 3, 3, 2) and point.shape == (1, 1, 6, 4)
    np.testing.assert_allclose(point[0, 0, 4], separable.pointwise_kernel.numpy()[0, 0, 2] / 2)


def test_normalization_vectors_are_copied_and_unknown_weights_refused():
    norm = _built(keras.layers.BatchNormalization(), (None, 3))
    weights = reader_weights(norm, "normalization", positions=np.array([0, 1, 2, 0]), divisor=np.ones(4), old_size=3)
    assert [w.shape for w in weights] == [(4,)] * 4
    lora = keras.layers.Dense(2)
    lora.build((None, 3))
    lora.enable_lora(1)
    with pytest.raises(ValueError, match="which widen does not know how to resize"):
        reader_weights(lora, "producer", positions=np.arange(3), divisor=np.ones(3), old_size=3)
    with pytest.raises(ValueError, match="Received: kind='merge'"):
        reader_weights(norm, "merge", positions=np.arange(3), divisor=np.ones(3), old_size=3)
