"""Prune, cluster and QAT combined: unique values and zeros in Keras and in int8 TFLite.

Each combination is counted twice: in the stripped Keras model and in the int8
``.tflite`` file's weight constants (read from the flatbuffer). The per-tensor
count applies to weights quantized per tensor (every Dense, and convolutions in
the cluster-preserving schemes); per-axis files are counted per output channel.
"""

import keras
import numpy as np
import pytest

from kopt import clustering
from kopt import pruning
from kopt import quantization
from tflite_export import convert
from tflite_export.flatbuffer import TFLiteFlatbuffer

CLUSTERS = 6
SPARSITY = 0.6
_WEIGHTS = {"CONV_2D": 1, "FULLY_CONNECTED": 1}


def _data(count=96):
    rng = np.random.default_rng(0)
    return rng.random((count, 10, 10, 1)).astype("float32"), rng.integers(0, 4, count)


def _fit(model, epochs=2, learning_rate=0.01, callbacks=()):
    x, y = _data()
    model.compile(keras.optimizers.Adam(learning_rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=list(callbacks))
    return model


@pytest.fixture(scope="module")
def base():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((10, 10, 1))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    return _fit(keras.Model(inputs, keras.layers.Dense(4, name="fc")(x)))


@pytest.fixture(scope="module")
def pruned(base):
    schedule = pruning.ConstantSparsity(SPARSITY, begin_step=0, frequency=1)
    model = pruning.prune_low_magnitude(base, pruning_schedule=schedule)
    return pruning.strip_pruning(_fit(model, epochs=1, callbacks=[pruning.UpdatePruningStep()]))


def _cluster(model, preserve_sparsity):
    clustered = clustering.cluster_weights(model, CLUSTERS, preserve_sparsity=preserve_sparsity)
    return clustering.strip_clustering(_fit(clustered, epochs=1))


def _qat(model, scheme):
    return _fit(quantization.quantize_model(model, scheme=scheme), epochs=1, learning_rate=0.005)


def _keras_kernels(model):
    model = quantization.strip_quantization(model) if any("quant" in layer.name for layer in model.layers) else model
    return {name: model.get_layer(name).kernel.numpy() for name in ("conv", "fc")}


def _tflite_kernels(model, tmp_path, quantization_aware):
    representative = None if quantization_aware else _data(32)[0]
    path = convert(model, str(tmp_path / "model.tflite"), mode="int8", representative_dataset=representative)
    flatbuffer = TFLiteFlatbuffer(path)
    kernels = {}
    for op in flatbuffer.ops:
        if op.name in _WEIGHTS:
            tensor = flatbuffer.stored_source(op.inputs[_WEIGHTS[op.name]])
            assert flatbuffer.dtype(tensor) == "int8"
            kernels["conv" if op.name == "CONV_2D" else "fc"] = flatbuffer.values(tensor)
    return kernels


def _per_channel_max(values, axis):
    return max(len(np.unique(np.take(values, index, axis=axis))) for index in range(values.shape[axis]))


@pytest.mark.slow
@pytest.mark.parametrize(
    "combination, zeros_kept, per_channel_conv",
    [
        ("cluster", False, True),
        ("prune+cluster", True, True),
        ("cluster+cqat", False, False),
        ("prune+pqat", True, None),
        ("prune+cluster+pcqat", True, False),
    ],
)
def test_counts_in_keras_and_in_int8_tflite(combination, zeros_kept, per_channel_conv, base, pruned, tmp_path):
    steps = combination.split("+")
    model = pruned if steps[0] == "prune" else base
    if "cluster" in steps:
        model = _cluster(model, preserve_sparsity=steps[0] == "prune")
    scheme = {"cqat": "cqat", "pqat": "pqat", "pcqat": "pcqat"}.get(steps[-1])
    if scheme is not None:
        model = _qat(model, scheme)

    keras_kernels = _keras_kernels(model)
    tflite_kernels = _tflite_kernels(model, tmp_path, quantization_aware=scheme is not None)
    for name in ("conv", "fc"):
        kernel, stored = keras_kernels[name], tflite_kernels[name]
        # TFLite stores kernels output-channel first.
        output_axis = 0
        if zeros_kept:
            assert np.mean(kernel == 0) >= SPARSITY - 0.01, (name, np.mean(kernel == 0))
            assert np.count_nonzero(stored == 0) >= np.count_nonzero(kernel == 0), name
        if "cluster" in steps:
            assert len(np.unique(kernel)) <= CLUSTERS, (name, np.unique(kernel))
            if name == "conv" and per_channel_conv:
                assert _per_channel_max(stored, output_axis) <= CLUSTERS, name
            else:
                assert len(np.unique(stored)) <= CLUSTERS, (name, np.unique(stored))
        else:
            assert len(np.unique(kernel)) > CLUSTERS
