"""Tests for kopt.pruning.structured_surgery: rebuilt configs and sliced weights."""

import keras
import numpy as np
import pytest

from kopt.pruning.structured_graph import analyze
from kopt.pruning.structured_surgery import rebuild

RNG = np.random.default_rng(1)


def _rebuild(model, keep):
    """Rebuilds with ``{producer name: keep mask}``."""
    graph = analyze(model)
    masks = {graph.find(graph.layers[name].output_group): np.array(mask) for name, mask in keep.items()}
    return rebuild(model, graph, masks)


def _randomized(model):
    for layer in model.layers:
        layer.set_weights([RNG.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    return model


def test_conv_bn_depthwise_flatten_dense_are_sliced_consistently():
    inputs = keras.Input((2, 2, 3))
    x = keras.layers.Conv2D(3, 1, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.DepthwiseConv2D(1, depth_multiplier=2, name="dw")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    model = _randomized(keras.Model(inputs, keras.layers.Dense(2, name="head")(x)))
    smaller = _rebuild(model, {"conv": [True, False, True]})
    conv, small_conv = model.get_layer("conv"), smaller.get_layer("conv")
    np.testing.assert_array_equal(small_conv.kernel.numpy(), conv.kernel.numpy()[..., [0, 2]])
    np.testing.assert_array_equal(small_conv.bias.numpy(), conv.bias.numpy()[[0, 2]])
    for original, small in zip(model.get_layer("bn").weights, smaller.get_layer("bn").weights, strict=True):
        np.testing.assert_array_equal(small.numpy(), original.numpy()[[0, 2]])
    dw = model.get_layer("dw")
    np.testing.assert_array_equal(smaller.get_layer("dw").kernel.numpy(), dw.kernel.numpy()[:, :, [0, 2], :])
    np.testing.assert_array_equal(smaller.get_layer("dw").bias.numpy(), dw.bias.numpy()[[0, 1, 4, 5]])
    # Flatten of 2x2 positions x 6 depthwise outputs; channels 2 and 3 came from conv filter 1.
    rows = [p * 6 + c for p in range(4) for c in (0, 1, 4, 5)]
    np.testing.assert_array_equal(
        smaller.get_layer("head").kernel.numpy(), model.get_layer("head").kernel.numpy()[rows]
    )
    assert smaller.get_layer("conv").get_config()["filters"] == 2
    assert smaller.name == model.name


def test_separable_conv_input_and_output_slicing():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 1, name="conv")(inputs)
    x = keras.layers.SeparableConv2D(4, 3, depth_multiplier=2, name="sep")(x)
    model = _randomized(keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(x)))
    smaller = _rebuild(model, {"conv": [False, True, True], "sep": [True, True, False, True]})
    sep, small = model.get_layer("sep"), smaller.get_layer("sep")
    np.testing.assert_array_equal(small.depthwise_kernel.numpy(), sep.depthwise_kernel.numpy()[:, :, [1, 2], :])
    pointwise = sep.pointwise_kernel.numpy()[:, :, [2, 3, 4, 5], :][..., [0, 1, 3]]
    np.testing.assert_array_equal(small.pointwise_kernel.numpy(), pointwise)
    np.testing.assert_array_equal(small.bias.numpy(), sep.bias.numpy()[[0, 1, 3]])
    assert tuple(smaller.get_layer("head").kernel.shape) == (1, 1, 3, 2)


def test_unchanged_layers_keep_their_weights():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="a")(inputs)
    x = keras.layers.LayerNormalization(name="ln")(keras.layers.Dense(3, name="b")(x))
    model = _randomized(keras.Model(inputs, keras.layers.Dense(2, name="head")(x)))
    smaller = _rebuild(model, {"a": [True, True, False, True]})
    for name in ("ln", "head"):
        for original, copied in zip(model.get_layer(name).weights, smaller.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(copied.numpy(), original.numpy())
    assert tuple(smaller.get_layer("b").kernel.shape) == (3, 3)


def test_unknown_weight_names_are_refused():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="a")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    model.get_layer("a").enable_lora(2)  # adds lora_kernel_a and lora_kernel_b
    with pytest.raises(ValueError, match=r"layer 'a' \(Dense\) has weight 'a/lora_kernel_a'"):
        _rebuild(model, {"a": [True, False, True, True]})


def _squeeze_excite(channels=8):
    """A MobileNetV3/EfficientNet block: expand, depthwise, a sigmoid gate from a (1, 1, C) Reshape, project."""
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(channels, 1, name="expand")(inputs)
    x = keras.layers.BatchNormalization(name="expand_bn")(x)
    x = keras.layers.Activation("swish", name="expand_act")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    gate = keras.layers.GlobalAveragePooling2D(name="squeeze")(x)
    gate = keras.layers.Reshape((1, 1, channels), name="se_reshape")(gate)
    gate = keras.layers.Conv2D(2, 1, activation="swish", name="se_reduce")(gate)
    gate = keras.layers.Conv2D(channels, 1, activation="sigmoid", name="se_expand")(gate)
    x = keras.layers.Multiply(name="excite")([x, gate])
    x = keras.layers.Conv2D(4, 1, name="project")(x)
    outputs = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    return keras.Model(inputs, outputs)


def test_a_squeeze_excite_gate_is_pruned_with_its_block_and_its_reshape_follows():
    """The (1, 1, C) Reshape passes channels on: the expanded channels, the gate and the Reshape shrink together,
    and channels nothing reads go without changing the outputs."""
    from kopt.pruning import channel_plan
    from kopt.pruning import prune_channels

    model = _randomized(_squeeze_excite())
    norm = model.get_layer("expand_bn")
    norm.moving_variance.assign(np.abs(norm.moving_variance.numpy()) + 0.5)
    dead = [1, 4, 6]
    for name in ("project", "se_reduce"):
        kernel = model.get_layer(name).kernel.numpy()
        kernel[..., dead, :] = 0.0
        model.get_layer(name).kernel.assign(kernel)
    scores = np.ones(8)
    scores[dead] = 0.0
    importance = {"expand": scores, "se_expand": scores}
    plan = channel_plan(model, {"expand": 3 / 8}, importance=importance)
    group = next(group for group in plan["groups"] if "expand" in group["layers"])
    assert sorted(group["layers"]) == ["expand", "se_expand"] and not group["frozen"]
    smaller = prune_channels(model, {"expand": 3 / 8}, importance=importance)
    assert smaller.get_layer("se_reshape").get_config()["target_shape"] == (1, 1, 5)
    assert smaller.get_layer("se_expand").filters == 5 and smaller.get_layer("expand").filters == 5
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 3)).astype("float32")
    np.testing.assert_allclose(smaller.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_a_per_channel_constant_is_sliced_with_the_channels_it_is_added_to():
    """A position table computed once and added with ``keras.ops`` (``x + table``), as ViT examples build it."""
    inputs = keras.Input((4, 3))
    x = keras.layers.Dense(4, name="embed")(inputs)
    table = RNG.normal(size=(4, 4)).astype("float32")  # (positions, channels)
    table[:, 1] = 0.0  # the channel removed below: dead in the original too
    x = keras.ops.add(x, keras.ops.convert_to_tensor(table))
    model = _randomized(keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x))))
    kernel, bias = model.get_layer("embed").get_weights()
    kernel[:, 1], bias[1] = 0.0, 0.0
    model.get_layer("embed").set_weights([kernel, bias])
    smaller = _rebuild(model, {"embed": [True, False, True, True]})
    images = RNG.normal(size=(5, 4, 3)).astype("float32")
    np.testing.assert_allclose(smaller(images), model(images), atol=1e-5)
    node = next(entry for entry in smaller.get_config()["layers"] if entry["class_name"] == "Add")
    kept = np.asarray(node["inbound_nodes"][0]["args"][1]["config"]["value"])
    np.testing.assert_array_equal(kept, table[:, [0, 2, 3]])


def test_a_model_with_a_python_lambda_is_rebuilt_with_its_function():
    """Keras refuses to rebuild a Python lambda from a config (and the bytecode loses its globals)."""
    inputs = keras.Input((8,))
    x = keras.layers.Lambda(lambda t: keras.ops.square(t), name="square")(inputs)  # blocks only what it reads
    x = keras.layers.Dense(6, name="hidden")(x)
    model = _randomized(keras.Model(inputs, keras.layers.Dense(2, name="head")(x)))
    smaller = _rebuild(model, {"hidden": [True, True, True, False, True, False]})
    assert smaller.get_layer("square").function is model.get_layer("square").function
    assert tuple(smaller.get_layer("head").kernel.shape) == (4, 2)
    kernel, bias = model.get_layer("hidden").get_weights()
    kernel[:, [3, 5]], bias[[3, 5]] = 0.0, 0.0
    model.get_layer("hidden").set_weights([kernel, bias])
    x = RNG.normal(size=(3, 8)).astype("float32")
    np.testing.assert_allclose(smaller(x), model(x), atol=1e-5)
