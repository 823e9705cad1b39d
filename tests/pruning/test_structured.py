"""Tests for kopt.pruning.structured: channel pruning that shrinks the model."""

import os

import keras
import numpy as np
import pytest

import tflite_export
from kopt.pruning import PruneLowMagnitude
from kopt.pruning import strip_pruning
from kopt.pruning.flops import count_flops
from kopt.pruning.structured import apply_channel_plan
from kopt.pruning.structured import channel_plan
from kopt.pruning.structured import prune_channels
from kopt.pruning.structured import structured_pruning_report
from kopt.testing.test_case import run_model_saving_test

RNG = np.random.default_rng(0)


def _conv_model(filters=(8, 6, 10)):
    """Conv2D, BN, ReLU, MaxPool, DepthwiseConv2D (x2), Flatten, Dense, Dropout."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(filters[0], 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    x = keras.layers.Conv2D(filters[1], 1, activation="relu", name="conv2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(filters[2], activation="relu", name="fc1")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="head")(x), name="conv_model")


def _residual_model(filters=(8, 6)):
    """conv0 and conv2 meet in an Add, so they share one channel set."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(filters[0], 3, padding="same", name="conv0")(inputs)
    y = keras.layers.Conv2D(filters[1], 3, padding="same", activation="relu", name="conv1")(x)
    y = keras.layers.Conv2D(filters[0], 3, padding="same", name="conv2")(y)
    x = keras.layers.Activation("relu", name="act")(keras.layers.Add(name="add")([x, y]))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name="residual_model")


def _concat_model():
    inputs = keras.Input((6, 6, 3))
    a = keras.layers.Conv2D(4, 3, activation="relu", name="conv_a")(inputs)
    b = keras.layers.Conv2D(6, 3, activation="relu", name="conv_b")(inputs)
    x = keras.layers.Flatten(name="flatten")(keras.layers.Concatenate(name="concat")([a, b]))
    x = keras.layers.Dense(6, activation="relu", name="fc")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name="concat_model")


def _separable_se_model():
    """SeparableConv2D with a squeeze-and-excitation Multiply, then Conv2D and GlobalMaxPooling."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.SeparableConv2D(8, 3, padding="same", depth_multiplier=2, activation="relu", name="sep")(inputs)
    se = keras.layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
    se = keras.layers.Dense(4, activation="relu", name="se_reduce")(se)
    se = keras.layers.Dense(8, activation="sigmoid", name="se_expand")(se)
    x = keras.layers.Multiply(name="excite")([x, se])
    x = keras.layers.Conv2D(5, 1, activation="relu", name="conv")(x)
    x = keras.layers.GlobalMaxPooling2D(name="gmp")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name="se_model")


def _ops_model():
    """Channels meeting in keras.ops calls rather than layers."""
    inputs = keras.Input((6, 6, 3))
    a = keras.layers.Conv2D(6, 3, name="conv_a")(inputs)
    b = keras.layers.Conv2D(6, 3, name="conv_b")(inputs)
    x = keras.ops.relu(keras.ops.add(a, b) * 2.0)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name="ops_model")


def _prelu_model():
    """PReLU with a slope per position and channel, per channel, and one shared by every channel."""
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.PReLU(name="prelu1")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv2")(x)
    x = keras.layers.PReLU(shared_axes=[1, 2], name="prelu2")(x)
    x = keras.layers.Conv2D(4, 3, name="conv3")(x)
    x = keras.layers.PReLU(shared_axes=[1, 2, 3], name="prelu3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name="prelu_model")


def _unet_model():
    """A U-Net's decoder: transposed convolutions that read pruned channels and make prunable ones."""
    inputs = keras.Input((8, 8, 3))
    skip = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="enc1")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="enc2")(skip)
    x = keras.layers.Conv2DTranspose(6, 2, strides=2, padding="same", name="up")(x)
    x = keras.layers.BatchNormalization(name="up_bn")(x)
    x = keras.layers.Concatenate(name="concat")([x, skip])
    x = keras.layers.Conv2DTranspose(4, 3, padding="same", activation="relu", name="up2")(x)
    return keras.Model(inputs, keras.layers.Conv2D(3, 1, name="head")(x), name="unet_model")


def _randomize(model):
    for layer in model.layers:
        weights = [RNG.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
        if isinstance(layer, keras.layers.BatchNormalization):
            weights[-1] = np.abs(weights[-1]) + 0.5  # moving variance
        layer.set_weights(weights)
    return model


def _kill(model, name, channels, *, bias_channels=None):
    """Makes output channels of a layer exactly zero (kernel columns, bias, BN gamma/beta)."""
    layer = model.get_layer(name)
    weights = []
    for variable, value in zip(layer.weights, layer.get_weights(), strict=True):
        if isinstance(layer, keras.layers.Conv2DTranspose) and variable.name == "kernel":
            value[..., channels, :] = 0  # (h, w, out, in)
        elif variable.name in ("kernel", "pointwise_kernel", "gamma", "beta"):
            value[..., channels] = 0
        elif variable.name == "bias":
            value[channels if bias_channels is None else bias_channels] = 0
        weights.append(value)
    layer.set_weights(weights)


def _dead_conv_model():
    model = _randomize(_conv_model())
    dead = {"conv1": [0, 3, 5, 6], "conv2": [1, 2, 4], "fc1": [0, 2, 3, 7, 9]}
    _kill(model, "conv1", dead["conv1"])
    _kill(model, "bn1", dead["conv1"])
    # dw has depth_multiplier 2: input channel c feeds outputs 2c and 2c+1.
    _kill(model, "dw", [], bias_channels=[2 * c + m for c in dead["conv1"] for m in (0, 1)])
    _kill(model, "conv2", dead["conv2"])
    _kill(model, "fc1", dead["fc1"])
    return model, dead


def _dead_residual_model():
    model = _randomize(_residual_model())
    dead = {"conv0": [1, 4, 6, 7], "conv1": [0, 2, 5], "conv2": [1, 4, 6, 7]}
    for name, channels in dead.items():
        _kill(model, name, channels)
    return model, dead


def _dead_concat_model():
    model = _randomize(_concat_model())
    dead = {"conv_a": [1, 2], "conv_b": [0, 3, 4], "fc": [2, 3, 5]}
    for name, channels in dead.items():
        _kill(model, name, channels)
    return model, dead


def _dead_se_model():
    model = _randomize(_separable_se_model())
    dead = {"sep": [1, 2, 5, 6], "se_expand": [1, 2, 5, 6], "se_reduce": [0, 3], "conv": [1, 3]}
    for name, channels in dead.items():
        _kill(model, name, channels)
    return model, dead


def _dead_prelu_model():
    model = _randomize(_prelu_model())
    dead = {"conv1": [0, 2, 3, 7], "conv2": [1, 4, 5], "conv3": [1, 2]}
    for name, channels in dead.items():
        _kill(model, name, channels)
    return model, dead


def _dead_unet_model():
    model = _randomize(_unet_model())
    dead = {"enc1": [0, 2, 3], "enc2": [1, 2, 5, 6], "up": [0, 4, 5], "up2": [1, 3]}
    for name, channels in dead.items():
        _kill(model, name, channels)
    _kill(model, "up_bn", dead["up"])
    return model, dead


def _dead_ops_model():
    model = _randomize(_ops_model())
    dead = {"conv_a": [0, 4, 5], "conv_b": [0, 4, 5]}
    for name, channels in dead.items():
        _kill(model, name, channels)
    return model, dead


@pytest.mark.parametrize(
    "build",
    [
        _dead_conv_model,
        _dead_residual_model,
        _dead_concat_model,
        _dead_se_model,
        _dead_ops_model,
        _dead_prelu_model,
        _dead_unet_model,
    ],
)
def test_removing_dead_channels_keeps_outputs_exactly(build):
    model, dead = build()
    plan = channel_plan(model, 0.5)
    assert {name: plan["layers"][name]["removed"] for name in dead} == dead
    pruned = apply_channel_plan(model, plan)
    images = RNG.normal(size=(16, *model.input_shape[1:])).astype("float32")
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(pruned.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert pruned.count_params() < model.count_params()


def test_residual_add_prunes_its_inputs_as_one_group():
    plan = channel_plan(_randomize(_residual_model()), 0.5)
    groups = {tuple(group["layers"]): group for group in plan["groups"]}
    assert groups[("conv0", "conv2")]["kept"] == 4
    assert plan["layers"]["conv0"]["removed"] == plan["layers"]["conv2"]["removed"]
    assert groups[("head",)]["frozen"] == "model output"


def test_params_and_flops_match_a_model_built_smaller():
    model = _randomize(_conv_model())
    pruned = prune_channels(model, 0.5)
    reference = _conv_model(filters=(4, 3, 5))
    assert pruned.count_params() == reference.count_params()
    assert count_flops(pruned) == count_flops(reference)
    report = structured_pruning_report(model, pruned)
    assert report["total"]["params_after"] == reference.count_params()
    assert report["layers"]["conv1"]["flops_after"] == report["layers"]["conv1"]["flops_before"] // 2
    assert report["layers"]["fc1"]["params_after"] == 4 * 4 * 3 * 5 + 5  # Flatten of 4x4x3 into 5 units
    assert 0.2 < report["total"]["flops_ratio"] < 0.5


def test_pruned_model_saves_fits_and_converts(tmp_path):
    model = _randomize(_conv_model())
    pruned = prune_channels(model, 0.5)
    images = RNG.normal(size=(32, 8, 8, 3)).astype("float32")
    labels = RNG.integers(0, 4, size=32)
    run_model_saving_test(pruned, images[:4], atol=1e-5, rtol=1e-5)

    path = tflite_export.convert(pruned, os.path.join(tmp_path, "pruned.tflite"))
    checked = tflite_export.verify(path, pruned, [(images, labels)])
    assert checked["agreement"] == 1.0
    scale = np.abs(pruned.predict(images, verbose=0)).max()
    assert checked["max_abs_diff"] < 1e-5 * scale

    pruned.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = pruned.get_layer("conv1").get_weights()[0].copy()
    history = pruned.fit(images, labels, epochs=2, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.array_equal(before, pruned.get_layer("conv1").get_weights()[0])


def test_sequential_with_global_average_pooling_stays_sequential():
    model = _randomize(
        keras.Sequential(
            [
                keras.Input((8, 8, 3)),
                keras.layers.Conv2D(8, 3, name="conv"),
                keras.layers.BatchNormalization(name="bn"),
                keras.layers.Activation("relu", name="act"),
                keras.layers.GlobalAveragePooling2D(name="gap"),
                keras.layers.Dense(2, activation="softmax", name="head"),
            ],
            name="seq",
        )
    )
    pruned = prune_channels(model, 0.25)
    assert isinstance(pruned, keras.Sequential) and pruned.name == "seq"
    assert pruned.get_layer("conv").filters == 6
    assert tuple(pruned.get_layer("bn").gamma.shape) == (6,)
    assert tuple(pruned.get_layer("head").kernel.shape) == (6, 2)
    assert pruned.get_layer("head").get_config()["activation"] == "softmax"


def test_bn_gamma_and_l2_importance_choose_expected_channels():
    model = _randomize(_conv_model())
    bn = model.get_layer("bn1")
    gamma, beta, mean, variance = bn.get_weights()
    gamma = np.array([5.0, 0.1, 4.0, 0.2, 3.0, 0.3, 2.0, 0.4], "float32")
    bn.set_weights([gamma, beta, mean, variance])
    plan = channel_plan(model, {"conv1": 0.5}, importance="bn_gamma")
    assert plan["layers"]["conv1"]["removed"] == [1, 3, 5, 7]
    assert plan["layers"]["conv2"]["removed"] == []

    kernel, bias = model.get_layer("fc1").get_weights()
    kernel[:, [4, 8]] *= 1e-3
    model.get_layer("fc1").set_weights([kernel, bias])
    assert channel_plan(model, {"fc1": 0.2}, importance="l2")["layers"]["fc1"]["removed"] == [4, 8]


def test_layer_selection_min_channels_and_round_to():
    model = _randomize(_residual_model())
    plan = channel_plan(model, 0.5, layers=["conv2"])
    assert plan["layers"]["conv0"]["channels_after"] == 4  # coupled to conv2 through the Add
    assert plan["layers"]["conv1"]["removed"] == []
    assert channel_plan(model, {"conv1": 0.9}, min_channels=2)["layers"]["conv1"]["channels_after"] == 2
    assert channel_plan(model, {"conv1": 0.5}, round_to=4)["layers"]["conv1"]["channels_after"] == 4
    assert channel_plan(model, 0.0)["layers"]["conv1"]["removed"] == []


def test_channel_mixing_layers_freeze_what_they_read():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, activation="softmax", name="soft")(inputs)
    x = keras.layers.Dense(8, name="normed")(x)
    x = keras.layers.LayerNormalization(name="ln")(x)
    x = keras.layers.Dense(8, name="free")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    plan = channel_plan(model, 0.5)
    assert "'soft' applies activation 'softmax'" in plan["groups"][0]["frozen"]
    assert "LayerNormalization" in plan["groups"][1]["frozen"]
    assert plan["layers"]["free"]["channels_after"] == 4
    with pytest.raises(ValueError, match="layer 'soft' cannot be pruned"):
        channel_plan(model, {"soft": 0.5})


def test_edited_plan_is_applied_and_checked():
    model = _randomize(_residual_model())
    plan = channel_plan(model, 0.0)
    plan["layers"]["conv1"]["removed"] = [0, 5]
    assert apply_channel_plan(model, plan).get_layer("conv1").filters == 4
    plan["layers"]["conv0"]["removed"] = [1]
    with pytest.raises(ValueError, match="share one channel set"):
        apply_channel_plan(model, plan)
    plan["layers"]["conv2"]["removed"] = [1]
    plan["layers"]["head"]["removed"] = [0]
    with pytest.raises(ValueError, match="model output"):
        apply_channel_plan(model, plan)
    with pytest.raises(ValueError, match="not a prunable layer of model 'conv_model'"):
        apply_channel_plan(_conv_model(), plan)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fraction": 1.0}, r"fraction must be a number in \[0, 1\). Received: fraction=1.0"),
        ({"fraction": -0.1}, r"Received: fraction=-0.1"),
        ({"fraction": {"conv1": 1.5}}, r"Received: fraction\['conv1'\]=1.5"),
        ({"importance": "l3"}, r"Received: importance='l3'"),
        ({"layers": ["nope"]}, r"layer 'nope' is not in model 'residual_model'"),
        ({"layers": ["gap"]}, r"layer 'gap' is a GlobalAveragePooling2D"),
        ({"layers": ["head"]}, r"layer 'head' cannot be pruned: model output"),
        ({"fraction": {"conv0": 0.5, "conv2": 0.25}}, r"must be pruned by one fraction"),
        ({"min_channels": 0}, r"Received: min_channels=0"),
        ({"round_to": 2.5}, r"Received: round_to=2.5"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        channel_plan(_residual_model(), **kwargs)


@keras.saving.register_keras_serializable(package="kopt_tests")
class _Doubled(keras.layers.Layer):
    """A layer of the user's own: what it does to channels is unknown."""

    def call(self, x):
        return 2.0 * x


def test_unsupported_layer_in_path_is_named():
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = _Doubled(name="up")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(x))
    with pytest.raises(ValueError, match=r"layer 'up' \(_Doubled\) would receive fewer channels from \['conv'\]"):
        prune_channels(model, 0.5)
    # Leaving the layers that feed it out makes the rest prunable.
    assert prune_channels(model, 0.5, layers=[]).count_params() == model.count_params()


def test_ops_with_constant_arrays_block_pruning():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    scaled = keras.ops.multiply(hidden, np.arange(4, dtype="float32"))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(scaled))
    with pytest.raises(ValueError, match=r"would receive fewer channels from \['hidden'\]"):
        prune_channels(model, 0.5)


def test_subclassed_models_and_wrappers_are_refused():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    model = Subclassed()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="subclassed Subclassed"):
        prune_channels(model)
    inputs = keras.Input((4,))
    hidden = PruneLowMagnitude(keras.layers.Dense(6, name="hidden"))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
    with pytest.raises(ValueError, match=r"kopt wrapper \(PruneLowMagnitude\); call kopt.pruning.strip_pruning"):
        prune_channels(model)
    assert prune_channels(strip_pruning(model), 0.5).get_layer("hidden").units == 3

    class Doubled(keras.layers.Wrapper):  # a user's wrapper: what its weights mean is not known
        def call(self, x):
            return 2.0 * self.layer(x)

    inputs = keras.Input((5, 4))
    wrapped = Doubled(keras.layers.Dense(3), name="doubled")(inputs)
    with pytest.raises(ValueError, match=r"layer 'doubled' is a wrapper layer \(Doubled\)"):
        prune_channels(keras.Model(inputs, wrapped))


def test_a_model_with_no_channel_that_can_go_is_refused_with_the_reasons():
    """A grouped convolution before an output Dense: nothing is prunable, and silence would return the same model."""
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(8, 3, groups=2, name="grouped")(inputs)
    outputs = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs, name="grouped_net")
    with pytest.raises(ValueError, match=r"'grouped_net' has no channels.*logits: model output.*'grouped' \(Conv2D\)"):
        prune_channels(model, 0.3)
    assert channel_plan(model, 0.0)["groups"][0]["removed"] == []  # asking for nothing is not an error
