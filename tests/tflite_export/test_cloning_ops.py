"""clone_graph_model on every kind of functional node: ops, nested models, shared layers."""

import keras
import numpy as np
import pytest
from keras import ops

from kopt.clustering import ClusterWeights
from kopt.clustering import cluster_weights
from kopt.clustering import strip_clustering
from kopt.pruning import ConstantSparsity
from kopt.pruning import PruneLowMagnitude
from kopt.pruning import prune_low_magnitude
from kopt.pruning import strip_pruning
from kopt.quantization import QuantizeWrapper
from kopt.quantization import quantize_model
from kopt.quantization import strip_quantization
from kopt.testing import run_model_saving_test
from kopt.utils import model_graph
from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_layer

L = keras.layers


def _clone(model, seen=None):
    def layer_fn(layer):
        if seen is not None:
            seen.append(layer.name)
        return copy_layer(layer)

    return clone_graph_model(model, layer_fn, action="clone", advice="")


def _assert_same_outputs(clone, model, inputs):
    expected = keras.tree.flatten(model.predict(inputs, verbose=0))
    actual = keras.tree.flatten(clone.predict(inputs, verbose=0))
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-6)


def _data(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _ops_model():
    """Hard-sigmoid and hard-swish written with keras.ops, as MobileNetV3 writes them."""
    inputs = keras.Input((6,), name="features")
    x = L.Dense(8, name="dense")(inputs)
    gate = ops.relu6(x + 3.0) * (1.0 / 6.0)
    x = ops.multiply(x, gate)
    x = ops.concatenate([x, L.Dense(4, name="side")(inputs)], axis=-1)
    return keras.Model(inputs, L.Dense(3, name="head")(x))


def test_operations_are_reused_and_only_layers_reach_layer_fn():
    model = _ops_model()
    operations = [op for op in model.operations if not isinstance(op, L.Layer)]
    assert {type(op).__name__ for op in operations} >= {"Add", "Relu6", "Multiply", "Concatenate"}
    seen = []
    clone = _clone(model, seen)
    assert sorted(seen) == ["dense", "head", "side"]
    assert all(op in clone.operations for op in operations)
    assert clone.layers[0].name == "features"
    assert not {id(w) for w in clone.weights} & {id(w) for w in model.weights}
    _assert_same_outputs(clone, model, _data(5, 6))


def test_copy_layer_returns_an_operation_and_refuses_weights_for_it():
    model = _ops_model()
    add = next(op for op in model.operations if type(op).__name__ == "Add")
    assert copy_layer(add) is add
    with pytest.raises(ValueError, match=r"Operation 'add.*' \(Add\) is not a layer .* Received: 1 weight"):
        copy_layer(add, weights=[np.zeros(1)])


def test_call_function_sees_operations_and_layers():
    model = _ops_model()
    called = []

    def call(node, *args, **kwargs):
        called.append(type(node).__name__)
        return node(*args, **kwargs)

    clone = clone_graph_model(model, copy_layer, action="clone", advice="", call_function=call)
    assert {"Dense", "Add", "Relu6", "Multiply", "Concatenate"} <= set(called)
    _assert_same_outputs(clone, model, _data(5, 6))


def _nested_model():
    inner_inputs = keras.Input((4,), name="inner_x")
    inner = keras.Model(inner_inputs, ops.relu(L.Dense(4, name="inner_dense")(inner_inputs) - 0.5), name="inner")
    sequential = keras.Sequential([keras.Input((4,)), L.Dense(4, name="seq_dense"), L.ReLU()], name="seq")
    inputs = keras.Input((4,), name="x")
    x = sequential(inner(inputs))
    return keras.Model(inputs, L.Dense(2, name="head")(x + inputs), name="outer")


def test_nested_functional_and_sequential_models_are_entered():
    model = _nested_model()
    seen = []
    clone = _clone(model, seen)
    assert {"inner_dense", "seq_dense", "head"} <= set(seen)
    assert "inner" not in seen and "seq" not in seen
    inner, sequential = clone.get_layer("inner"), clone.get_layer("seq")
    assert inner is not model.get_layer("inner") and isinstance(sequential, keras.Sequential)
    assert inner.layers[0].name == "inner_x"
    _assert_same_outputs(clone, model, _data(3, 4))


def test_subclassed_nested_model_is_refused():
    class Block(keras.Model):
        def __init__(self):
            super().__init__(name="block")
            self.dense = L.Dense(2)

        def call(self, x):
            return self.dense(x)

    inputs = keras.Input((3,))
    model = keras.Model(inputs, Block()(inputs))
    with pytest.raises(ValueError, match=r"Cannot clone the subclassed model 'block' \(Block\)"):
        _clone(model)


def _shared_layer_model():
    inputs = keras.Input((4,))
    shared = L.Dense(4, name="shared")
    x = shared(inputs)
    x = shared(ops.tanh(x))
    return keras.Model(inputs, L.Dense(1, name="head")(x))


def test_shared_layer_is_cloned_once_and_called_at_each_place():
    model = _shared_layer_model()
    seen = []
    clone = _clone(model, seen)
    assert seen.count("shared") == 1
    assert [layer.name for layer in clone.layers].count("shared") == 1
    assert len(model_graph.inbound_layers(clone.get_config())["shared"]) == 2
    _assert_same_outputs(clone, model, _data(3, 4))


def _two_in_two_out_model():
    image = keras.Input((4,), name="image")
    extra = keras.Input((2,), name="extra")
    x = L.Concatenate(name="join")([L.Dense(3, name="a")(image), extra * 2.0])
    outputs = {"score": L.Dense(1, name="score")(x), "aux": ops.sum(x, axis=-1)}
    return keras.Model({"image": image, "extra": extra}, outputs)


def test_several_inputs_and_outputs_keep_names_and_structure():
    model = _two_in_two_out_model()
    clone = _clone(model)
    assert sorted(layer.name for layer in clone.layers if isinstance(layer, L.InputLayer)) == ["extra", "image"]
    inputs = {"image": _data(5, 4), "extra": _data(5, 2, seed=1)}
    outputs = clone.predict(inputs, verbose=0)
    assert sorted(outputs) == ["aux", "score"]
    _assert_same_outputs(clone, model, inputs)


def test_keyword_arguments_of_layer_calls_are_replayed():
    tokens = keras.Input((5, 3), name="tokens")
    mask = keras.Input((5,), dtype="bool", name="mask")
    x = L.Dropout(0.5, name="dropout")(tokens, training=False)
    x = L.BatchNormalization(name="bn")(x, training=False)
    pooled = L.GlobalAveragePooling1D(name="pool")(x, mask=mask)
    model = keras.Model([tokens, mask], L.Dense(2, name="head")(pooled))
    clone = _clone(model)
    layers = clone.get_config()["layers"]
    nodes = {layer["name"]: layer["inbound_nodes"][0] for layer in layers if layer["inbound_nodes"]}
    assert nodes["dropout"]["kwargs"] == {"training": False} and nodes["bn"]["kwargs"] == {"training": False}
    assert nodes["pool"]["kwargs"]["mask"]["config"]["keras_history"] == ["mask", 0, 0]
    tokens_data = _data(4, 5, 3)
    some = np.arange(20).reshape(4, 5) % 3 != 0
    _assert_same_outputs(clone, model, [tokens_data, some])
    # The mask changes the result, so the clone does pass it.
    unmasked = clone.predict([tokens_data, np.ones_like(some)], verbose=0)
    assert np.abs(unmasked - clone.predict([tokens_data, some], verbose=0)).max() > 1e-3


def test_techniques_wrap_only_their_layers_and_strip_back():
    model = _ops_model()
    x = _data(5, 6)
    pruned = prune_low_magnitude(model, pruning_schedule=ConstantSparsity(0.5, 0))
    assert sorted(layer.name for layer in pruned.layers if isinstance(layer, PruneLowMagnitude)) == [
        "prune_low_magnitude_dense",
        "prune_low_magnitude_head",
        "prune_low_magnitude_side",
    ]
    _assert_same_outputs(pruned, model, x)  # masks are all ones before the first step
    _assert_same_outputs(strip_pruning(pruned), model, x)

    clustered = cluster_weights(model, number_of_clusters=4, cluster_centroids_init="LINEAR")
    assert sum(isinstance(layer, ClusterWeights) for layer in clustered.layers) == 3
    _assert_same_outputs(strip_clustering(clustered), clustered, x)

    qat = quantize_model(model)
    assert sum(isinstance(layer, QuantizeWrapper) for layer in qat.layers) == 3
    qat(x, training=True)
    stripped = strip_quantization(qat)
    assert not any(isinstance(layer, QuantizeWrapper) for layer in stripped.layers)
    assert {type(op).__name__ for op in stripped.operations} >= {"Add", "Relu6", "Multiply", "Concatenate"}
    expected = model.predict(x, verbose=0)
    # Only the weights are rounded, to 8 bits.
    np.testing.assert_allclose(stripped.predict(x, verbose=0), expected, atol=0.02 * np.ptp(expected))
    for optimized in (pruned, clustered, qat):
        run_model_saving_test(optimized, x)


def test_techniques_clone_nested_and_shared_models():
    model = _nested_model()
    pruned = prune_low_magnitude(model)
    wrapped = [layer.name for layer in pruned.get_layer("inner").layers if isinstance(layer, PruneLowMagnitude)]
    assert wrapped == ["prune_low_magnitude_inner_dense"]
    _assert_same_outputs(strip_pruning(pruned), model, _data(3, 4))

    shared = _shared_layer_model()
    clustered = cluster_weights(shared, number_of_clusters=3, cluster_centroids_init="LINEAR")
    assert sum(isinstance(layer, ClusterWeights) for layer in clustered.layers) == 2
    _assert_same_outputs(strip_clustering(clustered), clustered, _data(3, 4))
    run_model_saving_test(clustered, _data(3, 4))


def test_call_function_with_a_sequential_model_is_refused():
    model = keras.Sequential([keras.Input((2,)), L.Dense(1)], name="plain")

    def call(node, *args, **kwargs):
        return node(*args, **kwargs)

    with pytest.raises(ValueError, match=r"Sequential model 'plain' lists its layers .* Received: call_function="):
        clone_graph_model(model, copy_layer, action="clone", advice="", call_function=call)
