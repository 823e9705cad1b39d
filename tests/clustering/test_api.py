"""Tests for kopt.clustering.api: cluster_weights on layers, lists and models; strip_clustering."""

import warnings

import keras
import numpy as np
import pytest

from kopt.clustering import CentroidInitialization
from kopt.clustering import ClusterWeights
from kopt.clustering import cluster_weights
from kopt.clustering import strip_clustering
from kopt.testing import run_model_saving_test


def _cnn():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="fc")(x))


def _unique_counts(model):
    return {layer.name: len(np.unique(layer.kernel.numpy())) for layer in model.layers if hasattr(layer, "kernel")}


class _Scale(keras.layers.Layer):
    """A layer with a weight that kopt.clustering has no rule for."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


def test_unsupported_layers_are_listed_in_one_warning_but_normalization_is_left_alone_quietly():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3, name="conv")(inputs))
    x = _Scale(name="scale")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(keras.layers.Flatten()(x)))
    with pytest.warns(UserWarning, match=r"left 1 layer\(s\) .*: scale \(_Scale\)\."):
        cluster_weights(model, 4)


def test_functional_model_is_wrapped_trained_and_stripped_to_k_values():
    model = _cnn()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clustered = cluster_weights(model, 5, CentroidInitialization.DENSITY_BASED)
    # BatchNormalization is left alone without a warning.
    assert not [w for w in caught if "cluster_weights left" in str(w.message)]
    assert [type(layer).__name__ for layer in clustered.layers if layer.weights] == [
        "ClusterWeights",
        "BatchNormalization",
        "ClusterWeights",
    ]
    clustered.compile(keras.optimizers.Adam(0.01), "mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 8, 8, 1)), rng.normal(size=(32, 3))
    clustered.fit(x, y, epochs=1, verbose=0)
    stripped = strip_clustering(clustered)
    assert not any(isinstance(layer, ClusterWeights) for layer in stripped.layers)
    assert _unique_counts(stripped) == {"conv": 5, "fc": 5}
    np.testing.assert_allclose(stripped(x[:4]), clustered(x[:4]), rtol=1e-5, atol=1e-5)
    # The original model is untouched.
    assert _unique_counts(model)["fc"] > 5


def test_sequential_model_saving():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5), keras.layers.Dense(2)])
    clustered = cluster_weights(model, 3, "RANDOM", preserve_sparsity=True)
    loaded = run_model_saving_test(clustered, np.ones((2, 6), "float32"))
    assert all(isinstance(layer, ClusterWeights) for layer in loaded.layers)


def test_nested_models_are_entered(tmp_path):
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, name="inner_fc")], name="inner")
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(inner(inputs)))
    clustered = cluster_weights(model, 3, "LINEAR")
    assert isinstance(clustered.get_layer("inner").layers[0], ClusterWeights)
    # Variable paths of a nested model change on load (a Keras naming matter), so
    # the loaded model is compared by outputs and by what it strips to.
    clustered.save(tmp_path / "nested.keras")
    loaded = keras.models.load_model(tmp_path / "nested.keras")
    x = np.random.default_rng(0).normal(size=(3, 6)).astype("float32")
    np.testing.assert_allclose(loaded(x), clustered(x), rtol=1e-6, atol=1e-6)
    stripped = strip_clustering(loaded)
    assert len(np.unique(stripped.get_layer("inner").layers[0].kernel.numpy())) == 3


def test_layer_and_list_forms():
    dense = keras.layers.Dense(2)
    wrapped = cluster_weights(dense, 4, name="clustered_fc")
    assert isinstance(wrapped, ClusterWeights) and wrapped.name == "clustered_fc"
    assert cluster_weights(wrapped, 4) is wrapped
    items = cluster_weights([keras.layers.Dense(2), keras.layers.Flatten()], 4)
    assert [type(item).__name__ for item in items] == ["ClusterWeights", "Flatten"]


def test_bad_input_raises_before_any_work():
    with pytest.raises(ValueError, match="number_of_clusters=0"):
        cluster_weights(_cnn(), 0)
    with pytest.raises(ValueError, match="to_cluster of type str"):
        cluster_weights("model", 4)
    with pytest.raises(ValueError, match="single layer"):
        cluster_weights(_cnn(), 4, name="x")
    with pytest.raises(ValueError, match="'flat'"):
        cluster_weights(keras.layers.Flatten(name="flat"), 4)

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="subclassed"):
        cluster_weights(Subclassed(), 4)
    with pytest.raises(ValueError, match="model="):
        strip_clustering(keras.layers.Dense(2))


def test_frozen_layers_stay_frozen_and_keep_their_clustered_values(tmp_path):
    layers = keras.layers
    inner_inputs = keras.Input((6, 6, 2))
    hidden = layers.ReLU()(layers.Conv2D(4, 3, name="backbone_conv")(inner_inputs))
    backbone = keras.Model(inner_inputs, layers.GlobalAveragePooling2D()(hidden), name="backbone")
    backbone.trainable = False  # the transfer-learning layout: only the head trains
    inputs = keras.Input((6, 6, 2))
    model = keras.Model(inputs, layers.Dense(3, name="head")(backbone(inputs, training=False)))
    clustered = cluster_weights(model, 4)
    trainable = {weight.path for weight in clustered.trainable_weights}
    assert not any("backbone_conv" in path for path in trainable) and any("head" in path for path in trainable)
    frozen = [w for w in clustered.weights if "backbone_conv" in w.path and "centroids" in w.path]
    before = [np.array(w.numpy()) for w in frozen]
    rng = np.random.default_rng(0)
    clustered.compile(keras.optimizers.Adam(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clustered.fit(rng.normal(size=(16, 6, 6, 2)), rng.integers(0, 3, 16), epochs=2, verbose=0)
    for weight, value in zip(frozen, before):
        np.testing.assert_array_equal(weight.numpy(), value)
    path = str(tmp_path / "clustered.keras")
    clustered.save(path)
    loaded = keras.models.load_model(path)
    assert {weight.path for weight in loaded.trainable_weights} == trainable
