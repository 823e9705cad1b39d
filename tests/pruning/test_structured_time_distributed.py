"""Structured pruning through TimeDistributed layers: a CRNN's per-frame convolutions and a tagger's head."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt import pruning

L = keras.layers
DEAD = [1, 4]


def _randomized(model, seed=0):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.normal(0, 0.5, variable.shape)
        variable.assign(np.abs(value) + 0.5 if variable.path.endswith("moving_variance") else value)
    return model


def _frames_model():
    """Video-style clips: per-frame Conv2D + BatchNormalization + ReLU + pooling + Flatten, then an LSTM."""
    inputs = keras.Input((5, 8, 8, 2))
    x = L.TimeDistributed(L.Conv2D(6, 3), name="frame_conv")(inputs)
    x = L.TimeDistributed(L.BatchNormalization(), name="frame_norm")(x)
    x = L.TimeDistributed(L.Activation("relu"), name="frame_relu")(x)
    x = L.TimeDistributed(L.MaxPooling2D(), name="frame_pool")(x)
    x = L.TimeDistributed(L.Flatten(), name="frame_flat")(x)
    x = L.LSTM(4, name="reader")(x)
    return _randomized(keras.Model(inputs, L.Dense(3, name="head")(x)))


def _tagger():
    """One tag per step: a TimeDistributed projection between recurrent layers and a TimeDistributed head."""
    inputs = keras.Input((7, 5))
    x = L.TimeDistributed(L.Dense(6, activation="relu"), name="proj")(inputs)
    x = L.LSTM(8, return_sequences=True, name="reader")(x)
    return _randomized(keras.Model(inputs, L.TimeDistributed(L.Dense(4), name="tags")(x)))


def _silence_rows(model, name, rows):
    kernel = model.get_layer(name).cell.kernel
    value = kernel.numpy()
    value[rows] = 0.0
    kernel.assign(value)


@pytest.mark.parametrize("build, producer, rows_per_channel", [(_frames_model, "frame_conv", 9), (_tagger, "proj", 1)])
def test_channels_nothing_reads_go_from_a_time_distributed_layer_without_changing_the_outputs(
    build, producer, rows_per_channel, tmp_path
):
    model = build()
    width = 6
    # The LSTM reads channel c at rows k * width + c (a flattened 3x3 grid per frame, or the channel itself).
    rows = [k * width + c for k in range(rows_per_channel) for c in DEAD]
    _silence_rows(model, "reader", rows)
    scores = {
        producer: np.where(np.isin(np.arange(width), DEAD), 0.0, 1.0),
        "reader": np.ones(model.get_layer("reader").units),
    }
    smaller = pruning.prune_channels(model, {producer: 2 / 6}, importance=scores)
    inner = smaller.get_layer(producer).layer
    assert (inner.get_config().get("filters") or inner.get_config()["units"]) == 4
    assert smaller.get_layer("reader").cell.kernel.shape[0] == 4 * rows_per_channel
    if producer == "frame_conv":  # the per-frame BatchNormalization keeps the same four channels
        assert tuple(smaller.get_layer("frame_norm").layer.gamma.shape) == (4,)
    x = np.random.default_rng(1).normal(size=(8, *model.input.shape[1:])).astype("float32")
    np.testing.assert_allclose(smaller.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    smaller.save(tmp_path / "smaller.keras")
    restored = keras.models.load_model(tmp_path / "smaller.keras")
    np.testing.assert_allclose(restored.predict(x, verbose=0), smaller.predict(x, verbose=0), atol=1e-6)


def test_a_time_distributed_output_head_keeps_its_units_and_the_smaller_model_converts(tmp_path):
    model = _tagger()
    plan = pruning.channel_plan(model, 0.5)
    planned = {name for group in plan["groups"] if group["removed"] for name in group["layers"]}
    assert "proj" in planned and "tags" not in planned  # the model's output keeps its width
    smaller = pruning.prune_channels(model, 0.5)
    assert smaller.get_layer("tags").layer.units == 4 and smaller.get_layer("proj").layer.units == 3
    path = tflite_export.convert(smaller, str(tmp_path / "tagger.tflite"))
    x = np.random.default_rng(2).normal(size=(16, 7, 5)).astype("float32")
    labels = np.argmax(smaller.predict(x, verbose=0), axis=-1)
    assert tflite_export.verify(path, smaller, (x, labels))["max_abs_diff"] < 1e-4


def test_a_time_distributed_layer_with_no_channel_rule_is_opaque_and_named():
    inputs = keras.Input((7, 5))
    x = L.Dense(6, name="proj")(inputs)
    x = L.TimeDistributed(L.LayerNormalization(), name="frame_norm")(x)
    model = keras.Model(inputs, L.Dense(3, name="head")(L.Flatten()(x)))
    with pytest.raises(
        ValueError, match=r"'frame_norm' \(TimeDistributed\) would receive fewer channels from \['proj'\]"
    ):
        pruning.channel_plan(model, 0.5)
