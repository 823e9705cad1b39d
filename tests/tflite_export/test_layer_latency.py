"""Tests for tflite_export/layer_latency.py: each convolution and dense layer timed alone."""

import keras
import pytest

from tflite_export.layer_latency import layer_latencies


def test_every_timed_layer_gets_its_own_time_and_alike_layers_are_converted_once(monkeypatch):
    from tflite_export import layer_latency

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="first")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", name="same_as_second")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="second")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    outputs = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    converted = []
    real_convert = layer_latency.convert
    monkeypatch.setattr(layer_latency, "convert", lambda m, path: converted.append(m) or real_convert(m, path))
    times = layer_latencies(model, runs=3, warmup=1)
    assert list(times) == ["first", "same_as_second", "second", "depthwise", "head"]
    assert all(value >= 0 for value in times.values()) and times["first"] > 0
    # "same_as_second" and "second" have one configuration and input shape: timed once, the same figure.
    # The fifth file is the idle one whose time (one invoke's own cost) comes off every layer's.
    assert len(converted) == 5 and times["same_as_second"] == times["second"]
    assert [tuple(m.input_shape) for m in converted][0] == (None, 1)


def test_a_model_without_timed_layers_is_refused_by_name():
    model = keras.Sequential([keras.Input((4,)), keras.layers.ReLU()], name="activations_only")
    with pytest.raises(ValueError, match="'activations_only' has no layer"):
        layer_latencies(model)
