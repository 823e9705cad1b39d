"""Tests for kopt.pruning.structured_layers: the role each layer plays for channels."""

import keras
import numpy as np
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
        (keras.layers.Reshape((36, 4), name="x"), "pass"),
        (keras.layers.Reshape((6, 24), name="x"), "mixing"),
        (keras.layers.Flatten(name="x"), "flatten"),
        (keras.layers.Conv2DTranspose(4, 3, name="x"), "producer"),
        (keras.layers.Conv2DTranspose(4, 3, data_format="channels_first", name="x"), "opaque"),
        (keras.layers.Cropping2D(1, name="x"), "pass"),
        (keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3), name="x"), "producer"),
        (keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, groups=2), name="x"), "opaque"),
        (keras.layers.TimeDistributed(keras.layers.DepthwiseConv2D(3), name="x"), "depthwise"),
        (keras.layers.TimeDistributed(keras.layers.BatchNormalization(), name="x"), "normalization"),
        (keras.layers.TimeDistributed(keras.layers.BatchNormalization(axis=1), name="x"), "opaque"),
        (keras.layers.TimeDistributed(keras.layers.MaxPooling2D(), name="x"), "pass"),
        (keras.layers.TimeDistributed(keras.layers.Flatten(), name="x"), "flatten"),
        (keras.layers.TimeDistributed(keras.layers.LayerNormalization(), name="x"), "opaque"),
    ],
)
def test_single_input_layers(layer, role):
    # A TimeDistributed reads clips of 3 such frames.
    shape = (3, 6, 6, 4) if isinstance(layer, keras.layers.TimeDistributed) else (6, 6, 4)
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer(inputs))
    assert _roles(model)["x"] == role


def test_repeat_vector_passes_its_features_on():
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.RepeatVector(3, name="x")(inputs))
    assert _roles(model)["x"] == "pass"


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
    assert sorted(roles.values()) == ["constant", "merge", "pass", "pass"]


@pytest.mark.parametrize(
    "constant, role",
    [
        (np.ones((4,), "float32"), "constant"),  # one value per channel: sliced with them
        (np.ones((3, 4), "float32"), "constant"),  # a position table
        (np.ones((1,), "float32"), "pass"),  # broadcast over every channel
        (np.ones((3, 1), "float32"), "pass"),
        (np.float32(2.0), "pass"),
    ],
)
def test_a_keras_ops_call_with_a_constant(constant, role):
    inputs = keras.Input((3, 4))
    added = keras.ops.add(inputs, keras.ops.convert_to_tensor(constant))
    assert list(_roles(keras.Model(inputs, keras.ops.relu(added))).values())[0] == role


def test_a_constant_that_widens_the_channels_is_opaque():
    inputs = keras.Input((3, 1))
    added = keras.ops.add(inputs, keras.ops.ones((4,)))  # one channel becomes four
    assert list(_roles(keras.Model(inputs, added)).values()) == ["opaque"]


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


class _ChannelScale(keras.layers.Layer):
    """A user layer scaling each channel by its own weight; its size is a constructor argument."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(self.channels,), initializer="random_normal")

    def call(self, x):
        return x * self.scale

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def _scaled_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    x = _ChannelScale(8, name="scale")(keras.layers.Dense(8, name="hidden")(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def test_an_unregistered_user_layer_blocks_pruning_what_it_reads():
    from kopt.pruning import prune_channels

    with pytest.raises(ValueError, match=r"'scale' \(_ChannelScale\) would receive fewer channels"):
        prune_channels(_scaled_model(), 0.5, layers=["hidden"])


def test_a_registered_channelwise_layer_is_sliced_with_its_size_argument(monkeypatch):
    import numpy as np

    from kopt.pruning import prune_channels
    from kopt.pruning import register_channelwise_layer
    from kopt.pruning import structured_layers

    monkeypatch.setattr(structured_layers, "_REGISTERED_CHANNELWISE", {})
    with pytest.raises(ValueError, match="size_argument must be a config key"):
        register_channelwise_layer(_ChannelScale, size_argument=3)
    with pytest.raises(ValueError, match="layer_class must be a keras.layers.Layer subclass"):
        register_channelwise_layer("ChannelScale")
    register_channelwise_layer(_ChannelScale, size_argument="channels")
    model = _scaled_model()
    with keras.saving.custom_object_scope({"_ChannelScale": _ChannelScale}):
        smaller = prune_channels(model, 0.5, layers=["hidden"])
    assert smaller.get_layer("scale").channels == 4 and tuple(smaller.get_layer("scale").scale.shape) == (4,)
    # The kept channels compute what they did: zero the removed ones in the original to compare.
    kept = np.isin(model.get_layer("hidden").kernel.numpy().T, smaller.get_layer("hidden").kernel.numpy().T).all(axis=1)
    head = model.get_layer("head")
    head.set_weights([head.kernel.numpy() * kept[:, None], head.bias.numpy()])
    x = np.random.default_rng(1).normal(size=(5, 6)).astype("float32")
    np.testing.assert_allclose(smaller.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
