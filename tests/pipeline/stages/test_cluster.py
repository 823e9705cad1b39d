"""The cluster stage: checks, and clustering (with QAT after it) through the driver."""

import keras
import numpy as np
import pytest

from kopt import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import get_technique
from kopt.pipeline import run
from kopt.quantization import strip_quantization
from tflite_export.flatbuffer import TFLiteFlatbuffer


@pytest.mark.parametrize(
    "params, key",
    [
        ({}, "cluster.number_of_clusters"),
        ({"number_of_clusters": 1}, "cluster.number_of_clusters"),
        ({"number_of_clusters": 16.0}, "cluster.number_of_clusters"),
        ({"number_of_clusters": 16, "init": "cubic"}, "cluster.init"),
        ({"number_of_clusters": 16, "cluster_per_channel": "yes"}, "cluster.cluster_per_channel"),
        ({"number_of_clusters": 16, "preserve_sparsity": 1}, "cluster.preserve_sparsity"),
        ({"number_of_clusters": 16, "epochs": 0}, "cluster.epochs"),
    ],
)
def test_check_names_the_bad_param(params, key):
    with pytest.raises(ConfigError) as err:
        get_technique("cluster").check(params)
    assert err.value.key == key


@pytest.mark.parametrize(
    "params, key",
    [({"preserve": ["zeros"]}, "qat.preserve"), ({"scheme": "4bit", "preserve": ["clusters"]}, "qat.scheme")],
)
def test_qat_check_rejects_bad_preserve(params, key):
    with pytest.raises(ConfigError) as err:
        get_technique("qat").check(params)
    assert err.value.key == key


def _int8_kernels(path):
    flatbuffer = TFLiteFlatbuffer(path)
    return [
        flatbuffer.values(flatbuffer.stored_source(op.inputs[1]))
        for op in flatbuffer.ops
        if op.name in ("CONV_2D", "FULLY_CONNECTED")
    ]


@pytest.mark.slow
def test_prune_cluster_qat_keeps_zeros_and_clusters_in_the_int8_file(tmp_path):
    techniques = (
        TechniqueSpec("prune", {"target_sparsity": 0.6, "epochs": 1}),
        TechniqueSpec("cluster", {"number_of_clusters": 8, "preserve_sparsity": True, "epochs": 1}),
        TechniqueSpec("qat", {"epochs": 1, "preserve": ["sparsity", "clusters"]}),
    )
    report = run(Recipe(epochs=1, export_dir=str(tmp_path), techniques=techniques))
    assert report["techniques"] == ["prune", "cluster", "qat"]
    assert report["optimized"]["tflite_mode"] == "int8"
    model = strip_quantization(keras.models.load_model(report["files"]["optimized_keras"]))
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    assert all(len(np.unique(kernel)) <= 8 for kernel in kernels)
    assert all(np.mean(kernel == 0) >= 0.59 for kernel in kernels)
    stored = _int8_kernels(report["files"]["optimized_tflite"])
    assert len(stored) == len(kernels) == 5
    assert all(len(np.unique(values)) <= 8 and np.mean(values == 0) >= 0.59 for values in stored)
