"""Structured pruning of LSTM, GRU and SimpleRNN units: every gate loses the unit, and what reads it."""

import keras
import numpy as np
import pytest

from kopt import pruning
from kopt.pruning.structured_layers import fold_gates

RNG = np.random.default_rng(0)
RECURRENT = [
    (keras.layers.LSTM, {}),
    (keras.layers.GRU, {}),
    (keras.layers.GRU, {"reset_after": False}),
    (keras.layers.SimpleRNN, {"go_backwards": True}),
]
DEAD = {"embed": [1, 4], "rnn1": [0, 3, 5], "rnn2": [2]}
SIZES = {"embed": 6, "rnn1": 8, "rnn2": 4}


def _stacked(layer_class, options):
    inputs = keras.Input((7, 5))
    x = keras.layers.Dense(6, activation="relu", name="embed")(inputs)
    x = layer_class(8, return_sequences=True, name="rnn1", **options)(x)
    x = layer_class(4, name="rnn2", **options)(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    for variable in model.weights:
        variable.assign(RNG.normal(0, 0.5, variable.shape))
    return model


def _silence(model):
    """Zero every weight that reads the DEAD units (the next layer's input rows, their recurrent rows), so
    removing them cannot change what the model computes."""
    for reader, units, weight in (
        ("rnn1", DEAD["embed"], "kernel"),
        ("rnn1", DEAD["rnn1"], "recurrent_kernel"),
        ("rnn2", DEAD["rnn1"], "kernel"),
        ("rnn2", DEAD["rnn2"], "recurrent_kernel"),
        ("head", DEAD["rnn2"], "kernel"),
    ):
        layer = model.get_layer(reader)
        variable = getattr(getattr(layer, "cell", layer), weight)
        value = variable.numpy()
        value[units] = 0.0
        variable.assign(value)
    return model


@pytest.mark.parametrize("layer_class, options", RECURRENT, ids=["LSTM", "GRU", "GRU-reset_before", "SimpleRNN"])
def test_units_nothing_reads_go_without_changing_the_outputs(layer_class, options):
    model = _silence(_stacked(layer_class, options))
    scores = {name: np.where(np.isin(np.arange(size), DEAD[name]), 0.0, 1.0) for name, size in SIZES.items()}
    fractions = {name: len(DEAD[name]) / size for name, size in SIZES.items()}
    smaller = pruning.prune_channels(model, fractions, importance=scores)
    assert (smaller.get_layer("embed").units, smaller.get_layer("rnn1").units, smaller.get_layer("rnn2").units) == (
        4,
        5,
        3,
    )
    gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[layer_class.__name__]
    assert tuple(smaller.get_layer("rnn1").cell.kernel.shape) == (4, 5 * gates)
    assert tuple(smaller.get_layer("rnn1").cell.recurrent_kernel.shape) == (5, 5 * gates)
    x = RNG.normal(size=(4, 7, 5)).astype("float32")
    np.testing.assert_allclose(smaller.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_l1_scores_add_up_every_gate_and_taylor_scores_each_unit():
    model = _stacked(keras.layers.LSTM, {})
    plan = pruning.channel_plan(model, 0.5)
    kernel = np.abs(model.get_layer("rnn2").cell.kernel.numpy()).sum(0)
    expected = np.argsort(fold_gates(kernel, model.get_layer("rnn2")), kind="stable")[:2]
    assert plan["layers"]["rnn2"]["removed"] == sorted(expected.tolist())
    x = RNG.normal(size=(8, 7, 5)).astype("float32")
    scores = pruning.taylor_importance(model, (x, np.zeros(8, int)), batch_size=4)
    assert {name: value.shape for name, value in scores.items() if name != "head"} == {
        "embed": (6,),
        "rnn1": (8,),
        "rnn2": (4,),
    }
    smaller = pruning.prune_channels(model, 0.5, importance=scores)
    assert smaller.get_layer("rnn1").units == 4


def test_a_layer_that_returns_its_state_is_not_pruned_and_is_named():
    inputs = keras.Input((7, 5))
    sequence, state_h, _ = keras.layers.LSTM(8, return_state=True, name="stateful_out")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Concatenate()([sequence, state_h])))
    with pytest.raises(ValueError, match="layer 'stateful_out' is a LSTM; only the output channels"):
        pruning.prune_channels(model, 0.5, layers=["stateful_out"])
