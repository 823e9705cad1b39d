"""Structured pruning through Bidirectional LSTM/GRU/SimpleRNN: unit i goes from both directions at once."""

import keras
import numpy as np
import pytest

from kopt import pruning

RNG = np.random.default_rng(0)
DEAD = {"embed": [1, 4], "both": [0, 3, 5]}


def _model(layer_class, merge_mode):
    inputs = keras.Input((7, 5))
    x = keras.layers.Dense(6, activation="relu", name="embed")(inputs)
    x = keras.layers.Bidirectional(layer_class(8, return_sequences=True), merge_mode=merge_mode, name="both")(x)
    x = keras.layers.LSTM(4, name="reader")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    for variable in model.weights:
        variable.assign(RNG.normal(0, 0.5, variable.shape))
    return model


def _silence(model, merge_mode):
    """Zero every weight that reads a DEAD unit, so removing the units cannot change the outputs."""
    both = model.get_layer("both")
    for direction in (both.forward_layer, both.backward_layer):
        for weight, units in (("kernel", DEAD["embed"]), ("recurrent_kernel", DEAD["both"])):
            variable = getattr(direction.cell, weight)
            value = variable.numpy()
            value[units] = 0.0
            variable.assign(value)
    reader = model.get_layer("reader").cell.kernel
    value = reader.numpy()
    rows = DEAD["both"] + ([unit + 8 for unit in DEAD["both"]] if merge_mode == "concat" else [])
    value[rows] = 0.0
    reader.assign(value)
    return model


@pytest.mark.parametrize(
    "layer_class, merge_mode",
    [(keras.layers.LSTM, "concat"), (keras.layers.GRU, "sum"), (keras.layers.SimpleRNN, "concat")],
    ids=["LSTM-concat", "GRU-sum", "SimpleRNN-concat"],
)
def test_units_nothing_reads_go_from_both_directions_without_changing_the_outputs(layer_class, merge_mode, tmp_path):
    model = _silence(_model(layer_class, merge_mode), merge_mode)
    scores = {
        "embed": np.where(np.isin(np.arange(6), DEAD["embed"]), 0.0, 1.0),
        "both": np.where(np.isin(np.arange(8), DEAD["both"]), 0.0, 1.0),
        "reader": np.ones(4),
    }
    smaller = pruning.prune_channels(model, {"embed": 2 / 6, "both": 3 / 8}, importance=scores)
    both = smaller.get_layer("both")
    gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[layer_class.__name__]
    for direction in (both.forward_layer, both.backward_layer):
        assert direction.units == 5
        assert tuple(direction.cell.kernel.shape) == (4, 5 * gates)
        assert tuple(direction.cell.recurrent_kernel.shape) == (5, 5 * gates)
    assert smaller.get_layer("reader").cell.kernel.shape[0] == (10 if merge_mode == "concat" else 5)
    x = RNG.normal(size=(4, 7, 5)).astype("float32")
    np.testing.assert_allclose(smaller.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    path = str(tmp_path / "smaller.keras")
    smaller.save(path)
    np.testing.assert_allclose(keras.models.load_model(path).predict(x, verbose=0), smaller.predict(x, verbose=0))


def test_l1_scores_add_both_directions_and_every_gate():
    model = _model(keras.layers.LSTM, "concat")
    plan = pruning.channel_plan(model, {"both": 0.5})
    both = model.get_layer("both")
    columns = sum(np.abs(d.cell.kernel.numpy()).sum(0) for d in (both.forward_layer, both.backward_layer))
    expected = np.argsort(columns.reshape(4, 8).sum(0), kind="stable")[:4]
    assert plan["layers"]["both"]["removed"] == sorted(expected.tolist())
    assert plan["layers"]["both"]["channels_before"] == 8


def test_taylor_scores_a_bidirectional_unit_over_both_directions_and_finds_the_silent_ones():
    model = _silence(_model(keras.layers.GRU, "concat"), "concat")
    x = RNG.normal(size=(32, 7, 5)).astype("float32")
    scores = pruning.taylor_importance(model, (x, RNG.integers(0, 3, 32)), max_batches=1)
    assert scores["both"].shape == (8,)
    silent = np.isin(np.arange(8), DEAD["both"])
    assert np.all(scores["both"][silent] < 1e-12) and np.all(scores["both"][~silent] > 1e-8)
    smaller = pruning.prune_channels(model, {"both": 3 / 8}, importance=scores)
    assert smaller.get_layer("both").forward_layer.units == 5
    np.testing.assert_allclose(smaller.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_a_bidirectional_layer_without_a_merge_is_not_traced():
    inputs = keras.Input((7, 5))
    pair = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), merge_mode=None, name="pair")(inputs)
    x = keras.layers.Concatenate()(pair)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x)))
    with pytest.raises(ValueError, match="'pair' \\(Bidirectional\\)"):
        pruning.prune_channels(model, 0.5)


def test_a_latency_plan_takes_units_where_the_bidirectional_time_is():
    model = _model(keras.layers.LSTM, "concat")
    times = {"embed": 0.01, "both": 1.0, "reader": 0.05, "head": 0.0}
    plan = pruning.latency_channel_plan(model, 1.3, latencies=times, fixed_latencies={"both": 0.3}, round_to=1)
    assert plan["layers"]["both"]["channels_after"] < 8 and plan["latency"]["modelled_speedup"] >= 1.3
    smaller = pruning.apply_channel_plan(model, plan)
    assert smaller.get_layer("both").forward_layer.units == plan["layers"]["both"]["channels_after"]
