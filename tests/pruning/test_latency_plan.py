"""Tests for kopt/pruning/latency_plan.py: where a latency-aware plan removes channels, and its checks."""

import keras
import numpy as np
import pytest

from kopt import pruning
from kopt.pruning.latency_plan import latency_channel_plan


def _two_stage_model():
    """A convolution on a large map, one on a small map, and a head; channels start equally important."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", name="large_map")(inputs)
    x = keras.layers.Conv2D(32, 3, strides=4, padding="same", name="small_map")(x)
    outputs = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    for name in ("large_map", "small_map"):
        layer = model.get_layer(name)
        kernel = np.ones(tuple(layer.kernel.shape), "float32") * np.linspace(1.0, 2.0, 32, dtype="float32")
        layer.kernel.assign(kernel)
    return model


def test_channels_go_where_the_milliseconds_are():
    model = _two_stage_model()
    # The same FLOPs in proportion as any uniform plan; the measured time is all in the large map.
    plan = latency_channel_plan(model, 2.0, latencies={"large_map": 1.0, "small_map": 0.1, "head": 0.01})
    layers = plan["layers"]
    assert layers["small_map"]["channels_after"] == 32
    assert layers["large_map"]["channels_after"] in (8, 16)
    # The channels removed are the least important ones (lowest L1), a multiple of 8 at a time.
    removed = layers["large_map"]["removed"]
    assert removed == list(range(len(removed))) and len(removed) % 8 == 0
    latency = plan["latency"]
    assert latency["modelled_speedup"] >= 2.0 and latency["speedup_requested"] == 2.0
    assert latency["modelled_ms_before"] == pytest.approx(1.11)
    # When the head, which reads the small map's channels, is the slow one, the plan turns round.
    turned = latency_channel_plan(model, 2.0, latencies={"large_map": 0.01, "small_map": 0.01, "head": 1.0})
    assert turned["layers"]["large_map"]["channels_after"] == 32
    assert turned["layers"]["small_map"]["channels_after"] <= 16


def test_the_plan_builds_a_smaller_model_that_runs():
    model = _two_stage_model()
    plan = latency_channel_plan(model, 1.5, latencies={"large_map": 1.0, "small_map": 1.0, "head": 0.01})
    smaller = pruning.apply_channel_plan(model, plan)
    assert smaller.count_params() < model.count_params()
    assert smaller(np.zeros((1, 16, 16, 3), "float32")).shape == (1, 2)


def test_a_bottleneck_written_by_several_layers_costs_each_of_them():
    """Two convolutions meeting in an Add form one group; removing from it costs both layers' share."""
    inputs = keras.Input((8, 8, 16))
    a = keras.layers.Conv2D(16, 1, name="a")(inputs)
    b = keras.layers.Conv2D(16, 1, name="b")(inputs)
    merged = keras.layers.Add()([a, b])
    wide = keras.layers.Conv2D(16, 1, name="wide")(merged)
    outputs = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(wide))
    model = keras.Model(inputs, outputs)
    for name in ("a", "b", "wide"):
        layer = model.get_layer(name)
        layer.kernel.assign(np.ones((1, 1, 16, 16), "float32") * np.linspace(1.0, 2.0, 16, dtype="float32"))
    # 8 channels of the a+b group save 0.7 ms (half of a, b and wide's input), 8 of wide's 0.5 ms; by importance
    # per millisecond alone the group would go first, but its loss counts for both layers that write it.
    plan = latency_channel_plan(model, 1.5, latencies={"a": 0.2, "b": 0.2, "wide": 1.0, "head": 0.0})
    assert plan["layers"]["wide"]["channels_after"] == 8
    assert plan["layers"]["a"]["channels_after"] == plan["layers"]["b"]["channels_after"] == 16


def test_latencies_are_measured_when_not_given(monkeypatch):
    import tflite_export

    model = _two_stage_model()
    calls = []

    def fake(given, log=None):
        calls.append(given)
        return {"large_map": 1.0, "small_map": 0.1, "head": 0.01}

    monkeypatch.setattr(tflite_export, "layer_latencies", fake)
    plan = latency_channel_plan(model, 1.5)
    assert calls == [model] and plan["latency"]["layer_ms"]["large_map"] == 1.0


def test_a_recurrent_layer_saves_the_square_of_its_units_on_its_recurrent_share():
    """LSTM(32) on 8 features: 32/40 of its time is state times recurrent kernel, which shrinks on both sides."""
    inputs = keras.Input((10, 8))
    outputs = keras.layers.Dense(2, name="head")(keras.layers.LSTM(32, name="rnn")(inputs))
    model = keras.Model(inputs, outputs)
    plan = latency_channel_plan(model, 3.0, latencies={"rnn": 1.0, "head": 0.0})
    # Half the units: 0.2 * 0.5 + 0.8 * 0.5 ** 2 = 0.3 of the time (3.3x); a layer modelled on its
    # outputs alone would stop at 2x with half of them and need 3/4 of them gone for 3x.
    assert plan["layers"]["rnn"]["channels_after"] == 16
    assert plan["latency"]["modelled_ms_after"] == pytest.approx(0.3)
    smaller = pruning.apply_channel_plan(model, plan)
    assert smaller.get_layer("rnn").units == 16
    # Half of its time is the loop's own, which no unit removed saves: 0.5 + 0.5 * 0.3 with half the units.
    times, fixed = {"rnn": 1.0, "head": 0.0}, {"rnn": 0.5}
    looped = latency_channel_plan(model, 1.5, latencies=times, fixed_latencies=fixed)
    assert looped["layers"]["rnn"]["channels_after"] == 16
    assert looped["latency"]["modelled_ms_after"] == pytest.approx(0.65)
    assert looped["latency"]["layer_fixed_ms"] == {"rnn": 0.5}
    # At most 3/4 of the units go: 0.5 + 0.5 * (0.2 / 4 + 0.8 / 16) = 0.55 of the time, 1.82x at best.
    with pytest.raises(ValueError, match="cannot reach speedup=3.0.*stops at 1.818x"):
        latency_channel_plan(model, 3.0, latencies=times, fixed_latencies=fixed)


def test_bad_arguments_and_unreachable_speedups_raise_naming_the_value():
    model = _two_stage_model()
    times = {"large_map": 1.0, "small_map": 0.1, "head": 0.01}
    for kwargs, match in (
        ({"speedup": 1.0}, "speedup=1.0"),
        ({"speedup": "2"}, "speedup='2'"),
        ({"speedup": 2.0, "round_to": 0}, "round_to=0"),
        ({"speedup": 2.0, "max_fraction": 1.0}, "max_fraction=1.0"),
        ({"speedup": 2.0, "latencies": {"large_map": -1.0}}, "large_map"),
        ({"speedup": 2.0, "latencies": [1.0]}, r"latencies=\[1.0\]"),
        ({"speedup": 2.0, "fixed_latencies": {"large_map": 2.0}}, r"fixed_latencies=\{'large_map': 2.0\}"),
        ({"speedup": 2.0, "fixed_latencies": {"elsewhere": 0.0}}, "elsewhere"),
        ({"speedup": 2.0, "fixed_latencies": {"large_map": 0.1}, "latencies": None}, "latencies=None"),
    ):
        kwargs.setdefault("latencies", times)
        with pytest.raises(ValueError, match=match):
            latency_channel_plan(model, **kwargs)
    with pytest.raises(ValueError, match="cannot reach speedup=20.0.*stops at"):
        latency_channel_plan(model, 20.0, latencies=times, max_fraction=0.5)
