"""Clustering the layers of sequence models: LSTM, GRU and SimpleRNN kernels (also in Bidirectional), attention.

Each model is clustered whole, trained a step, saved and loaded, stripped and
converted; its recurrent or attention kernels must hold at most ``K`` values
(per gate column with ``cluster_per_channel``), as must a cluster-preserving
QAT model made from it.
"""

import warnings

import keras
import numpy as np
import pytest

import tflite_export
from kopt import clustering
from kopt import quantization


def _model(kind):
    if kind == "Bidirectional":
        inputs = keras.Input((6, 5))
        x = keras.layers.Bidirectional(keras.layers.LSTM(12), name="core")(inputs)
    elif kind == "MultiHeadAttention":
        inputs = keras.Input((6, 16))
        x = keras.layers.MultiHeadAttention(2, 8, name="core")(inputs, inputs)
        x = keras.layers.GlobalAveragePooling1D()(x)
    else:
        inputs = keras.Input((6, 5))
        x = getattr(keras.layers, kind)(12, name="core")(inputs)
    keras.utils.set_random_seed(0)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def _kernels(layer):
    return [variable.numpy() for variable in layer.weights if variable.path.endswith("kernel")]


def _train(model):
    data = np.random.default_rng(0).random((32, *model.input_shape[1:]), dtype="float32")
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.fit(data, np.zeros((32, 3), "float32"), epochs=1, batch_size=16, verbose=0)
    return data


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN", "MultiHeadAttention", "Bidirectional"])
def test_the_whole_model_clusters_and_the_kernels_keep_k_values_to_the_file(kind, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "left unclustered" would fail here
        clustered = clustering.cluster_weights(_model(kind), number_of_clusters=4)
    data = _train(clustered)
    path = str(tmp_path / "clustered.keras")
    clustered.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), clustered.predict(data, verbose=0))
    stripped = clustering.strip_clustering(loaded)
    kernels = _kernels(stripped.get_layer("core"))
    assert len(kernels) == (4 if kind in ("MultiHeadAttention", "Bidirectional") else 2)
    assert all(len(np.unique(kernel)) <= 4 for kernel in kernels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the static-batch note of a recurrent model
        file = tflite_export.convert(stripped, str(tmp_path / "clustered.tflite"))
    np.testing.assert_allclose(tflite_export.predict(file, data), stripped.predict(data, verbose=0), atol=1e-5)


def test_per_channel_clusters_are_per_gate_column():
    clustered = clustering.cluster_weights(_model("LSTM"), number_of_clusters=3, cluster_per_channel=True)
    _train(clustered)
    for kernel in _kernels(clustering.strip_clustering(clustered).get_layer("core")):
        assert kernel.shape[-1] == 4 * 12
        assert max(len(np.unique(kernel[:, column])) for column in range(kernel.shape[-1])) <= 3
        assert len(np.unique(kernel)) > 3  # the columns' centroids differ


@pytest.mark.parametrize("kind", ["LSTM", "MultiHeadAttention"])
def test_cluster_preserving_qat_keeps_the_clusters_of_these_kernels(kind):
    stripped = clustering.strip_clustering(clustering.cluster_weights(_model(kind), number_of_clusters=4))
    qat = quantization.quantize_model(stripped, scheme="cqat")
    _train(qat)
    wrappers = [layer for layer in qat.layers if "core" in layer.name]
    values = [array for wrapper in wrappers for array in wrapper.quantized_weights() if array.ndim >= 2]
    assert len(values) >= 2 and all(len(np.unique(array)) <= 4 for array in values)
