"""Layers QAT rewrites before wrapping (kopt.quantization.splits): a sequence tagger's TimeDistributed head."""

import keras
import numpy as np

import tflite_export
from kopt import clustering
from kopt import pruning
from kopt.quantization import quantize_model
from kopt.quantization import strip_quantization
from kopt.quantization.splits import unwrapped_dense

L = keras.layers


def _tagger():
    """Token ids -> Embedding -> Conv1D -> TimeDistributed(Dense): one tag per position."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12,), dtype="int32")
    x = L.Conv1D(16, 3, padding="same", activation="relu")(L.Embedding(50, 8)(inputs))
    return keras.Model(inputs, L.TimeDistributed(L.Dense(5), name="tags")(x))


def test_a_time_distributed_dense_quantizes_as_the_dense_it_wraps(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 50, (64, 12)).astype("int32")
    tags = np.random.default_rng(1).integers(0, 5, (64, 12))
    model = _tagger()
    qat = quantize_model(model)
    assert isinstance(qat.get_layer("quant_tags").layer, L.Dense)
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(tokens, tags, epochs=2, verbose=0)
    path = tflite_export.convert(qat, str(tmp_path / "tagger.tflite"), mode="int8")
    ok, reasons = tflite_export.is_fully_integer(path)
    assert ok, reasons
    checked = tflite_export.verify(path, qat, (tokens, tags))
    assert checked["agreement"] == 1.0 and checked["examples"] == 64
    assert strip_quantization(qat).output_shape == model.output_shape


def test_unwrapped_dense_computes_the_wrapper_and_leaves_other_layers():
    model = _tagger()
    wrapper = model.get_layer("tags")
    dense = unwrapped_dense(wrapper)
    x = np.random.default_rng(2).normal(size=(3, 12, 16)).astype("float32")
    np.testing.assert_allclose(dense(x), wrapper(x), atol=1e-6)
    assert unwrapped_dense(model.layers[1]) is None
    assert unwrapped_dense(L.TimeDistributed(L.Conv1D(2, 1))) is None


def test_a_time_distributed_layer_is_pruned_and_clustered_inside():
    tokens = np.random.default_rng(0).integers(0, 50, (32, 12)).astype("int32")
    tags = np.random.default_rng(1).integers(0, 5, (32, 12))
    pruned = pruning.prune_low_magnitude(_tagger(), pruning.ConstantSparsity(0.5, 0))
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(tokens, tags, epochs=1, verbose=0, callbacks=[pruning.UpdatePruningStep()])
    kernel = pruning.strip_pruning(pruned).get_layer("tags").layer.kernel.numpy()
    assert np.mean(kernel == 0) == 0.5
    clustered = clustering.cluster_weights(_tagger(), number_of_clusters=4)
    clustered.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clustered.fit(tokens, tags, epochs=1, verbose=0)
    kernel = clustering.strip_clustering(clustered).get_layer("tags").layer.kernel.numpy()
    assert len(np.unique(kernel)) <= 4
