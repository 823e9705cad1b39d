"""Every technique clones MobileNetV3, whose hard-sigmoid is keras.ops nodes (x + 3.0, * 1/6)."""

import keras
import numpy as np
import pytest

from kopt.clustering import ClusterWeights
from kopt.clustering import cluster_weights
from kopt.clustering import strip_clustering
from kopt.pruning import ConstantSparsity
from kopt.pruning import PruneLowMagnitude
from kopt.pruning import UpdatePruningStep
from kopt.pruning import prune_low_magnitude
from kopt.pruning import strip_pruning
from kopt.quantization import QuantizeWrapper
from kopt.quantization import quantize_model
from kopt.quantization import strip_quantization
from kopt.testing import run_model_saving_test
from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_layer

L = keras.layers
_WEIGHTED = (L.Conv2D, L.DepthwiseConv2D, L.Dense)


def _mobilenet_v3(application, images):
    model = application(input_shape=(32, 32, 3), weights=None, classes=10, classifier_activation=None)
    # With freshly initialized moving statistics the activations vanish layer after
    # layer (logits ~1e-10 whatever the image); statistics of real batches keep
    # the outputs dependent on the input, so comparisons below mean something.
    batch_norms = [layer for layer in model.layers if isinstance(layer, L.BatchNormalization)]
    momenta = [layer.momentum for layer in batch_norms]
    for layer in batch_norms:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(batch_norms, momenta):
        layer.momentum = momentum
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")


@pytest.fixture(scope="module")
def small(images):
    keras.utils.set_random_seed(0)
    return _mobilenet_v3(keras.applications.MobileNetV3Small, images)


def _assert_same_outputs(actual_model, expected_model, images, atol=1e-6):
    expected = expected_model.predict(images, verbose=0)
    np.testing.assert_allclose(actual_model.predict(images, verbose=0), expected, rtol=1e-6, atol=atol)


def _operation_types(model):
    return {type(op).__name__ for op in model.operations if not isinstance(op, L.Layer)}


def test_the_model_holds_ops_nodes_and_informative_outputs(small, images):
    assert _operation_types(small) == {"Add", "Multiply"}
    assert small.predict(images, verbose=0).std(axis=0).max() > 0.1


def test_pruning_wraps_every_weighted_layer_and_strips_to_the_same_outputs(small, images):
    schedule = ConstantSparsity(0.5, begin_step=0)
    # Depthwise layers are wrapped only when named, so name them: every weighted layer is then cloned wrapped.
    depthwise = {layer.name: schedule for layer in small.layers if isinstance(layer, L.DepthwiseConv2D)}
    pruned = prune_low_magnitude(small, pruning_schedule=schedule, layer_schedules=depthwise)
    wrapped = {layer.layer.name for layer in pruned.layers if isinstance(layer, PruneLowMagnitude)}
    assert wrapped == {layer.name for layer in small.layers if isinstance(layer, _WEIGHTED)}
    default = prune_low_magnitude(small, pruning_schedule=schedule)
    assert {layer.layer.name for layer in default.layers if isinstance(layer, PruneLowMagnitude)} == (
        wrapped - set(depthwise)
    )
    assert _operation_types(pruned) == {"Add", "Multiply"}
    _assert_same_outputs(pruned, small, images)  # masks are all ones before the first step
    stripped = strip_pruning(pruned)
    assert [layer.name for layer in stripped.layers] == [layer.name for layer in small.layers]
    _assert_same_outputs(stripped, small, images)
    run_model_saving_test(pruned, images)


def test_pruning_a_training_step_then_stripping_keeps_outputs(small, images):
    pruned = prune_low_magnitude(small, pruning_schedule=ConstantSparsity(0.5, begin_step=0))
    pruned.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(images, np.arange(16) % 10, batch_size=16, epochs=1, callbacks=[UpdatePruningStep()], verbose=0)
    stripped = strip_pruning(pruned)
    assert np.mean(stripped.get_layer("conv").kernel.numpy() == 0) == pytest.approx(0.5, abs=0.02)
    _assert_same_outputs(stripped, pruned, images, atol=1e-5)


def test_clustering_strips_to_the_clustered_outputs_and_k_values(small, images):
    clustered = cluster_weights(small, number_of_clusters=8, cluster_centroids_init="LINEAR")
    wrapped = {layer.layer.name for layer in clustered.layers if isinstance(layer, ClusterWeights)}
    assert wrapped == {layer.name for layer in small.layers if isinstance(layer, _WEIGHTED)}
    stripped = strip_clustering(clustered)
    _assert_same_outputs(stripped, clustered, images, atol=1e-5)
    assert len(np.unique(stripped.get_layer("expanded_conv_project").kernel.numpy())) <= 8
    assert _operation_types(stripped) == {"Add", "Multiply"}
    run_model_saving_test(clustered, images)


def test_quantization_aware_model_trains_strips_and_round_trips(small, images):
    qat = quantize_model(small)
    quantized = {type(layer.layer).__name__ for layer in qat.layers if isinstance(layer, QuantizeWrapper)}
    assert {"Conv2D", "DepthwiseConv2D", "Multiply"} <= quantized
    # The built-in Rescaling (with an offset) runs as a 1x1 depthwise convolution, so it stays int8.
    # (Keras names the Rescaling layer from a global counter: "rescaling", "rescaling_2", ...)
    rescaling = [layer for layer in qat.layers if layer.name.startswith("quant_rescaling")]
    assert "Rescaling" not in quantized and len(rescaling) == 1
    assert isinstance(rescaling[0].layer, keras.layers.DepthwiseConv2D)
    assert _operation_types(qat) == {"Add", "Multiply"}
    qat(images, training=True)  # sets every range
    run_model_saving_test(qat, images)
    stripped = strip_quantization(qat)
    assert not any(isinstance(layer, QuantizeWrapper) for layer in stripped.layers)
    # Only the weights stay rounded (8 bits per channel, BatchNormalization folded
    # first), so the graph, ops nodes included, computes the float model with
    # rounded weights.
    expected = _with_8bit_kernels(small).predict(images, verbose=0)
    np.testing.assert_allclose(stripped.predict(images, verbose=0), expected, atol=1e-3 * np.ptp(expected))


def _with_8bit_kernels(model):
    copy = clone_graph_model(model, copy_layer, action="copy", advice="")
    for layer in copy.layers:
        if isinstance(layer, _WEIGHTED):
            kernel, *rest = layer.get_weights()
            axes = (0, 1, 3) if isinstance(layer, L.DepthwiseConv2D) else tuple(range(kernel.ndim - 1))
            scale = np.abs(kernel).max(axis=axes, keepdims=True) / 127
            layer.set_weights([np.round(kernel / scale) * scale, *rest])
    return copy


@pytest.mark.slow
def test_mobilenet_v3_large_prunes_clusters_and_quantizes(images):
    keras.utils.set_random_seed(0)
    model = _mobilenet_v3(keras.applications.MobileNetV3Large, images)
    pruned = prune_low_magnitude(model)
    _assert_same_outputs(pruned, model, images)
    _assert_same_outputs(strip_pruning(pruned), model, images)
    clustered = cluster_weights(model, number_of_clusters=16, cluster_centroids_init="LINEAR")
    _assert_same_outputs(strip_clustering(clustered), clustered, images, atol=1e-5)
    qat = quantize_model(model)
    qat(images, training=True)
    stripped = strip_quantization(qat)
    assert _operation_types(stripped) == {"Add", "Multiply"}
    run_model_saving_test(qat, images)
