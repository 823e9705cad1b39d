"""Tests for kopt.clustering.centroids: initializations, assignment, gathering."""

import keras
import numpy as np
import pytest

from kopt.clustering.centroids import CentroidInitialization
from kopt.clustering.centroids import assign_to_centroids
from kopt.clustering.centroids import clustered_values
from kopt.clustering.centroids import init_centroids

METHODS = list(CentroidInitialization)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_k_sorted_centroids_within_the_range(method):
    values = np.random.default_rng(0).normal(size=500)
    centroids = init_centroids(values, 8, method, seed=3)
    assert centroids.shape == (8,) and centroids.dtype == np.float32
    assert np.all(np.diff(centroids) >= 0)
    assert values.min() - 1e-6 <= centroids.min() and centroids.max() <= values.max() + 1e-6


def test_linear_spans_min_to_max_evenly():
    np.testing.assert_allclose(init_centroids([-1.0, 0.3, 3.0], 5, "LINEAR"), [-1.0, 0.0, 1.0, 2.0, 3.0])


def test_density_based_puts_centroids_where_values_are_dense():
    values = np.concatenate([np.linspace(0.0, 0.1, 900), np.linspace(0.9, 1.0, 100)])
    centroids = init_centroids(values, 10, "DENSITY_BASED")
    assert np.sum(centroids < 0.5) == 9


def test_kmeans_plus_plus_finds_well_separated_clusters():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(center, 0.01, 200) for center in (-2.0, 0.5, 3.0)])
    np.testing.assert_allclose(init_centroids(values, 3, "KMEANS_PLUS_PLUS"), [-2.0, 0.5, 3.0], atol=0.01)


def test_random_depends_on_the_seed():
    values = np.linspace(-1, 1, 100)
    assert not np.allclose(init_centroids(values, 4, "RANDOM", seed=0), init_centroids(values, 4, "RANDOM", seed=1))


@pytest.mark.parametrize("method", METHODS)
def test_preserve_sparsity_pins_zero_first_and_fits_the_nonzeros(method):
    values = np.array([0.0] * 50 + list(np.linspace(1.0, 2.0, 50)))
    centroids = init_centroids(values, 4, method, preserve_sparsity=True)
    assert centroids[0] == 0.0
    assert np.all(centroids[1:] >= 1.0 - 1e-6)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="number_of_clusters=1"):
        init_centroids([1.0, 2.0], 1, "LINEAR")
    with pytest.raises(ValueError, match="CUBIC"):
        init_centroids([1.0, 2.0], 2, "CUBIC")


def test_assignment_takes_the_nearest_centroid_shared_and_per_channel():
    weights = np.array([[0.1, 5.2], [0.9, 4.1]], "float32")
    shared = keras.ops.convert_to_numpy(assign_to_centroids(weights, np.array([0.0, 1.0, 5.0])))
    assert shared.tolist() == [[0, 2], [1, 2]]
    per_channel = np.array([[0.0, 1.0], [4.0, 5.0]], "float32")  # (channels, K)
    indices = keras.ops.convert_to_numpy(assign_to_centroids(weights, per_channel))
    assert indices.tolist() == [[0, 1], [1, 0]]
    values = keras.ops.convert_to_numpy(clustered_values(per_channel, indices))
    assert values.tolist() == [[0.0, 5.0], [1.0, 4.0]]


def test_gradient_of_clustered_values_sums_each_cluster():
    import tensorflow as tf

    centroids = tf.Variable([0.0, 1.0])
    with tf.GradientTape() as tape:
        values = clustered_values(centroids, np.array([0, 1, 1, 1]))
        loss = tf.reduce_sum(values * tf.constant([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(tape.gradient(loss, centroids).numpy(), [1.0, 9.0])
