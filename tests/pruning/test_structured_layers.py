"""Tests for kopt.pruning.structured_layers: the role each layer plays for channels."""

import keras
import pytest

from kopt.pruning.structured_layers import classify
from kopt.pruning.structured_layers import is_elementwise


def _roles(model):
    """``{node name: role}`` for every node with inputs."""
    layers = {layer.name: layer for layer in model.layers}
    roles = {}
    for entry in model.get_config()["layers"]:
        nodes = entry["inbound_nodes"]
        if nodes:
            roles[entry["name"]] = classify(layers.get(entry["name"]), entry, nodes[0], len(nodes) > 1)
    return roles


@pytest.mark.parametrize(
    "layer, role",
    [
        (keras.layers.Conv2D(4, 3, name="x"), "producer"),
        (keras.layers.SeparableConv2D(4, 3, name="x"), "producer"),
        (keras.layers.Dense(4, name="x"), "producer"),
        (keras.layers.Conv2D(4, 3, groups=2, name="x"), "opaque"),
        (keras.layers.DepthwiseConv2D(3, name="x"), "depthwise"),
        (keras.layers.BatchNormalization(name="x"), "normalization"),
        (keras.layers.BatchNormalization(axis=1, name="x"), "opaque"),
        (keras.layers.MaxPooling2D(name="x"), "pass"),
        (keras.layers.MaxPooling2D(data_format="channels_first", name="x"), "opaque"),
        (keras.layers.GlobalAveragePooling2D(name="x"), "pass"),
        (keras.layers.ZeroPadding2D(name="x"), "pass"),
        (keras.layers.Activation("swish", name="x"), "pass"),
        (keras.layers.Activation("softmax", name="x"), "mixing"),
        (keras.layers.LayerNormalization(name="x"), "mixing"),
        (keras.layers.Reshape((-1,), name="x"), "mixing"),
        (keras.layers.Flatten(name="x"), "flatten"),
        (keras.layers.Conv2DTranspose(4, 3, name="x"), "opaque"),
    ],
)
def test_single_input_layers(layer, role):
    inputs = keras.Input((6, 6, 4))
    model = keras.Model(inputs, layer(inputs))
    assert _roles(model)["x"] == role


def test_merges_and_concatenate_axis():
    inputs = keras.Input((6, 6, 4))
    model = keras.Model(
        inputs,
        [
            keras.layers.Add(name="add")([inputs, inputs]),
            keras.layers.Concatenate(name="last")([inputs, inputs]),
            keras.layers.Concatenate(axis=1, name="rows")([inputs, inputs]),
        ],
    )
    assert _roles(model) == {"add": "merge", "last": "concat", "rows": "merge"}


def test_keras_ops_calls():
    inputs = keras.Input((4,))
    relu = keras.ops.relu(inputs)
    scaled = keras.ops.multiply(relu, 3.0)
    summed = keras.ops.add(scaled, relu)
    weighted = keras.ops.multiply(summed, keras.ops.ones((4,)))
    roles = _roles(keras.Model(inputs, weighted))
    assert sorted(roles.values()) == ["merge", "opaque", "pass", "pass"]


def test_user_subclasses_are_not_trusted():
    @keras.saving.register_keras_serializable(package="kopt_tests")
    class MyConv(keras.layers.Conv2D):
        pass

    inputs = keras.Input((6, 6, 4))
    model = keras.Model(inputs, MyConv(2, 3, name="x")(inputs))
    assert _roles(model)["x"] == "opaque"


def test_is_elementwise():
    assert is_elementwise("relu") and is_elementwise("gelu")
    assert not is_elementwise("softmax") and not is_elementwise({"class_name": "Custom"})
