"""Structured pruning of a backbone nested as one layer (the transfer-learning layout): pruned in the outer graph."""

import keras
import numpy as np

import tflite_export
from kopt import pruning

L = keras.layers


def _backbone():
    inputs = keras.Input((16, 16, 3))
    x = L.ReLU(name="stem_relu")(
        L.BatchNormalization(name="stem_bn")(L.Conv2D(8, 3, padding="same", name="stem")(inputs))
    )
    y = L.ReLU(name="body_relu")(L.Conv2D(8, 3, padding="same", name="body")(x))
    x = L.Add(name="skip")([x, L.Conv2D(8, 1, name="body_out")(y)])
    return keras.Model(inputs, L.GlobalAveragePooling2D(name="pool")(x), name="backbone")


def _model():
    keras.utils.set_random_seed(0)
    stem = keras.Sequential([L.Conv2D(3, 1, name="pre"), L.ReLU(name="pre_relu")], name="pre_block")
    inputs = keras.Input((12, 12, 3))
    x = L.Resizing(16, 16, name="resize")(L.RandomFlip("horizontal", name="flip")(inputs))
    features = _backbone()(stem(x))
    return keras.Model(inputs, L.Dense(4, name="head")(L.Dense(16, activation="relu", name="hidden")(features)))


def _images(count=8):
    return np.random.default_rng(1).random((count, 12, 12, 3)).astype("float32")


def test_a_nested_backbone_is_pruned_flat_and_keeps_its_function_where_nothing_is_removed():
    model, x = _model(), _images()
    same = pruning.prune_channels(model, 0.0)
    assert not any(isinstance(layer, keras.Model) for layer in same.layers)
    assert {"stem", "body", "body_out", "pre", "hidden"} <= {layer.name for layer in same.layers}
    np.testing.assert_allclose(same.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_dead_channels_of_the_backbone_go_and_the_outputs_stay():
    model, x = _model(), _images()
    backbone = model.get_layer("backbone")
    # Channels 0 and 1 of the skip group are zero everywhere: the stem's filters (through BatchNorm) and body_out's.
    kernel, bias = backbone.get_layer("stem").get_weights()
    kernel[..., :2], bias[:2] = 0.0, 0.0
    backbone.get_layer("stem").set_weights([kernel, bias])
    gamma, beta, mean, variance = backbone.get_layer("stem_bn").get_weights()
    gamma[:2], beta[:2] = 0.0, 0.0
    backbone.get_layer("stem_bn").set_weights([gamma, beta, mean, variance])
    kernel, bias = backbone.get_layer("body_out").get_weights()
    kernel[..., :2], bias[:2] = 0.0, 0.0
    backbone.get_layer("body_out").set_weights([kernel, bias])
    plan = pruning.channel_plan(model, {"stem": 0.25})
    assert plan["layers"]["stem"]["removed"] == [0, 1] and plan["layers"]["body_out"]["removed"] == [0, 1]
    smaller = pruning.apply_channel_plan(model, plan)
    assert smaller.get_layer("stem").filters == 6 and smaller.get_layer("body_out").filters == 6
    np.testing.assert_allclose(smaller.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    report = pruning.structured_pruning_report(model, smaller)
    assert report["layers"]["stem"]["params_after"] < report["layers"]["stem"]["params_before"]


def test_a_uniform_fraction_prunes_inside_and_outside_and_converts(tmp_path):
    model, x = _model(), _images()
    smaller = pruning.prune_channels(model, 0.5)
    assert smaller.get_layer("body").filters == 4 and smaller.get_layer("hidden").units == 8
    assert smaller.count_params() < model.count_params()
    path = tflite_export.convert(smaller, str(tmp_path / "smaller.tflite"))
    assert tflite_export.verify(path, smaller, (x, np.zeros(len(x), "int64")))["max_abs_diff"] < 1e-4
