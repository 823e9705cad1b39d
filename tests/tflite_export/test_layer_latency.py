"""Tests for tflite_export/layer_latency.py: each convolution, dense and recurrent layer timed alone."""

import json

import keras
import pytest

from tflite_export.layer_latency import fixed_latencies
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
    monkeypatch.setattr(
        layer_latency, "convert", lambda m, path, **kw: converted.append(m) or real_convert(m, path, **kw)
    )
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


def test_recurrent_layers_are_timed_and_a_sequence_of_unknown_length_is_refused():
    inputs = keras.Input((12, 6))
    x = keras.layers.LSTM(16, return_sequences=True, name="lstm")(inputs)
    x = keras.layers.GRU(16, name="gru")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    times = layer_latencies(model, runs=3, warmup=1)
    assert list(times) == ["lstm", "gru", "head"]
    # Twelve steps of gates: far more than the head's one small matrix product.
    assert times["lstm"] > times["head"] and times["gru"] > times["head"]
    unknown = keras.Sequential([keras.Input((None, 6)), keras.layers.LSTM(4, name="rnn")])
    with pytest.raises(ValueError, match="layer 'rnn' has \\(None, 6\\).*fixed one"):
        layer_latencies(unknown)


def test_fixed_latencies_split_each_recurrent_layer_and_skip_the_rest(monkeypatch):
    from tflite_export import layer_latency

    inputs = keras.Input((12, 6))
    x = keras.layers.LSTM(16, return_sequences=True, name="lstm")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.SimpleRNN(8, name="simple")(x)))
    # Given times: only the half-width layers are timed. 16 units on 6 features keep 8; 16/22 of the scaling
    # time is the recurrent kernel's, so half the units scale it by 6/22 * 1/2 + 16/22 * 1/4 = 7/22.
    timed = []
    monkeypatch.setattr(
        layer_latency,
        "_time",
        lambda signatures, *args: (
            timed.extend(signatures) or {signature: 0.5 if signature[0] == "LSTM" else 1.0 for signature in signatures}
        ),
    )
    fixed = fixed_latencies(model, latencies={"lstm": 1.0, "simple": 1.0, "head": 0.1})
    assert sorted(fixed) == ["lstm", "simple"]
    assert [json.loads(config)["units"] for _, _, config in timed] == [8, 4]
    assert fixed["lstm"] == pytest.approx((0.5 - 7 / 22) / (1 - 7 / 22))
    assert fixed["simple"] == 1.0  # as slow at half width: all of it is fixed, never more than its time
    with pytest.raises(ValueError, match=r"no time for the recurrent layers \['simple'\]"):
        fixed_latencies(model, latencies={"lstm": 1.0})
    convolutional = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    assert fixed_latencies(convolutional) == {}
    one_unit = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(1, name="gru")])
    assert fixed_latencies(one_unit) == {"gru": 0.0}


def test_a_bidirectional_layer_is_timed_and_halved_in_both_directions(monkeypatch):
    from tflite_export import layer_latency

    inputs = keras.Input((12, 6))
    x = keras.layers.Bidirectional(keras.layers.GRU(8), name="both")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    times = layer_latencies(model, runs=3, warmup=1)
    assert list(times) == ["both", "head"] and times["both"] > times["head"]
    timed = []
    monkeypatch.setattr(
        layer_latency, "_time", lambda signatures, *args: timed.extend(signatures) or dict.fromkeys(signatures, 0.5)
    )
    fixed = fixed_latencies(model, latencies=times)
    assert [json.loads(config)["layer"]["config"]["units"] for _, _, config in timed] == [4]
    assert 0.0 <= fixed["both"] <= times["both"]


def test_a_bidirectional_around_another_rnn_has_no_fixed_part_to_measure():
    inputs = keras.Input((5, 3))
    x = keras.layers.Bidirectional(keras.layers.RNN(keras.layers.LSTMCell(4)), name="custom")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    assert fixed_latencies(model, latencies={}) == {}
