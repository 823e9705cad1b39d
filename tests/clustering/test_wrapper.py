"""Tests for kopt.clustering.wrapper: centroids, indices, gradients, serialization."""

import keras
import numpy as np
import pytest

from kopt.clustering import ClusterWeights
from kopt.testing import run_layer_test
from kopt.testing import run_model_saving_test
from kopt.testing import run_serialization_test


def _wrapped(**kwargs):
    layer = keras.layers.Dense(6, name="fc")
    layer.build((None, 5))
    layer.kernel.assign(np.random.default_rng(0).normal(size=(5, 6)).astype("float32"))
    wrapper = ClusterWeights(layer, **{"number_of_clusters": 3, **kwargs})
    wrapper.build((None, 5))
    return wrapper


def test_layer_test_trains_serializes_and_saves():
    run_layer_test(
        ClusterWeights,
        {
            "layer": keras.layers.Dense(4),
            "number_of_clusters": 3,
            "cluster_centroids_init": "LINEAR",
            "preserve_sparsity": True,
            "cluster_per_channel": True,
        },
        np.random.default_rng(0).normal(size=(8, 5)).astype("float32"),
        expected_output_shape=(8, 4),
        # kernel, bias, centroids trainable; indices and mask not.
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=2,
    )


def test_inference_uses_exactly_k_values_and_matches_clustered_weights():
    wrapper = _wrapped(cluster_centroids_init="KMEANS_PLUS_PLUS")
    kernel, bias = wrapper.clustered_weights()
    assert len(np.unique(kernel)) == 3
    np.testing.assert_array_equal(np.unique(kernel), np.sort(wrapper.centroids[0].numpy()))
    x = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    np.testing.assert_allclose(wrapper(x).numpy(), x @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_per_channel_gives_k_values_per_output_channel():
    wrapper = _wrapped(cluster_per_channel=True)
    assert tuple(wrapper.centroids[0].shape) == (6, 3)
    kernel = wrapper.clustered_weights()[0]
    assert [len(np.unique(kernel[:, c])) for c in range(6)] == [3] * 6
    assert len(np.unique(kernel)) > 3


def test_gradients_reach_centroids_and_original_weights():
    import tensorflow as tf

    wrapper = _wrapped()
    x = np.random.default_rng(2).normal(size=(4, 5)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(wrapper(x, training=True) ** 2)
    gradients = tape.gradient(loss, wrapper.trainable_weights)
    names = [w.name for w in wrapper.trainable_weights]
    assert all(g is not None and np.any(g.numpy() != 0) for g in gradients), names


def test_preserve_sparsity_keeps_zeros_through_training():
    layer = keras.layers.Dense(8)
    layer.build((None, 6))
    kernel = np.random.default_rng(3).normal(size=(6, 8)).astype("float32")
    kernel[np.abs(kernel) < 0.8] = 0.0
    layer.kernel.assign(kernel)
    inputs = keras.Input((6,))
    model = keras.Model(inputs, ClusterWeights(layer, 4, preserve_sparsity=True)(inputs))
    model.compile(keras.optimizers.Adam(0.05), "mse")
    rng = np.random.default_rng(4)
    model.fit(rng.normal(size=(64, 6)), rng.normal(size=(64, 8)), epochs=3, verbose=0)
    clustered = model.layers[1].clustered_weights()[0]
    assert np.all(clustered[kernel == 0] == 0)
    assert len(np.unique(clustered)) <= 4 and 0.0 in np.unique(clustered)
    assert model.layers[1].centroids[0].numpy()[0] == 0.0


def test_training_moves_centroids_and_reassigns_indices():
    wrapper = _wrapped(cluster_centroids_init="LINEAR")
    inputs = keras.Input((5,))
    model = keras.Model(inputs, wrapper(inputs))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = wrapper.centroids[0].numpy().copy()
    rng = np.random.default_rng(5)
    model.fit(rng.normal(size=(32, 5)), rng.normal(size=(32, 6)), epochs=2, verbose=0)
    assert not np.allclose(before, wrapper.centroids[0].numpy())
    kernel = wrapper.layer.kernel.numpy()
    expected = np.argmin(np.abs(kernel[..., None] - wrapper.centroids[0].numpy()), axis=-1)
    # Indices were computed from the weights before the last update: nearly all agree.
    assert np.mean(wrapper.indices[0].numpy() == expected) > 0.9


def test_model_saving_keeps_centroids_indices_and_outputs():
    wrapper = _wrapped(preserve_sparsity=True, cluster_per_channel=True)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, wrapper(inputs))
    loaded = run_model_saving_test(model, np.ones((2, 5), "float32"))
    assert isinstance(loaded.layers[1], ClusterWeights)
    np.testing.assert_array_equal(loaded.layers[1].indices[0].numpy(), wrapper.indices[0].numpy())


def test_serialization_covers_every_argument():
    run_serialization_test(
        ClusterWeights(keras.layers.Dense(2), 5, "DENSITY_BASED", preserve_sparsity=True, cluster_per_channel=True),
        init_kwargs={
            "number_of_clusters": 5,
            "cluster_centroids_init": "DENSITY_BASED",
            "preserve_sparsity": True,
            "cluster_per_channel": True,
        },
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"number_of_clusters": 1}, "number_of_clusters=1"),
        ({"number_of_clusters": 2.5}, "number_of_clusters=2.5"),
        ({"number_of_clusters": 4, "cluster_centroids_init": "median"}, "cluster_centroids_init='median'"),
        ({"number_of_clusters": 4, "preserve_sparsity": "yes"}, "preserve_sparsity='yes'"),
    ],
)
def test_bad_settings_raise_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClusterWeights(keras.layers.Dense(2), **kwargs)


def test_bad_layers_raise():
    with pytest.raises(ValueError, match="'flat'"):
        ClusterWeights(keras.layers.Flatten(name="flat"), 4)
    with pytest.raises(ValueError, match="already wrapped"):
        ClusterWeights(ClusterWeights(keras.layers.Dense(2), 4), 4)
    with pytest.raises(ValueError, match="not models"):
        ClusterWeights(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), 4)
