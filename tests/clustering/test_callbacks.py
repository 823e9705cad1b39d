"""Tests for kopt.clustering.callbacks: ClusteringSummaries."""

import os

import keras
import numpy as np
import pytest

from kopt.clustering import ClusteringSummaries
from kopt.clustering import cluster_weights
from kopt.testing import run_serialization_test


def _logged_tags(directory):
    import tensorflow as tf

    tags = set()
    for name in os.listdir(directory):
        for record in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
            tags.update(value.tag for value in record.summary.value)
    return tags


def test_writes_unique_values_and_sparsity_per_clustered_weight(tmp_path):
    model = cluster_weights(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="fc")]), 3)
    model.compile("sgd", "mse")
    callback = ClusteringSummaries(log_dir=str(tmp_path), cluster_update_freq="batch")
    model.fit(np.ones((8, 4)), np.ones((8, 3)), batch_size=4, epochs=1, verbose=0, callbacks=[callback])
    assert _logged_tags(tmp_path / "metrics") == {"cluster_fc/kernel/unique_values", "cluster_fc/kernel/sparsity"}


def test_needs_a_clustered_model_and_valid_settings(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="no ClusterWeights"):
        model.fit(np.ones((4, 4)), np.ones((4, 3)), verbose=0, callbacks=[ClusteringSummaries(str(tmp_path))])
    with pytest.raises(ValueError, match="cluster_update_freq=3"):
        ClusteringSummaries(str(tmp_path), cluster_update_freq=3)
    with pytest.raises(ValueError, match="log_dir=''"):
        ClusteringSummaries("")


def test_serialization(tmp_path):
    run_serialization_test(
        ClusteringSummaries(str(tmp_path), "batch"),
        init_kwargs={"log_dir": str(tmp_path), "cluster_update_freq": "batch"},
    )
