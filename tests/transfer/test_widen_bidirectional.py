"""widen on Bidirectional recurrent layers: unit i of both directions is copied as one channel."""

import keras
import numpy as np
import pytest

from kopt.transfer import widen
from tests.transfer.test_widen import _inputs
from tests.transfer.test_widen import _randomize
from tests.transfer.test_widen import _same_outputs


def _stacked(cell="LSTM", merge_mode="concat"):
    inputs = keras.Input((7, 5))
    x = keras.layers.Dense(6, activation="relu", name="embed")(inputs)
    layer = getattr(keras.layers, cell)
    x = keras.layers.Bidirectional(layer(8, return_sequences=True), merge_mode=merge_mode, name="bi1")(x)
    x = keras.layers.Bidirectional(layer(4), merge_mode=merge_mode, name="bi2")(x)
    return _randomize(keras.Model(inputs, keras.layers.Dense(3, name="head")(x)))


_WIDTHS = {"embed": 9, "bi1": 13, "bi2": 7}
# Every cell and widened layer with concat; every other merge on the middle layer of each cell.
_CASES = [(cell, "concat", name) for cell in ("LSTM", "GRU", "SimpleRNN") for name in _WIDTHS] + [
    (cell, merge, "bi1") for cell in ("LSTM", "GRU") for merge in ("sum", "ave", "mul")
]


@pytest.mark.parametrize("cell, merge_mode, layer_name", _CASES)
def test_both_directions_grow_and_the_outputs_stay(cell, merge_mode, layer_name):
    new_units = _WIDTHS[layer_name]
    model = _stacked(cell, merge_mode)
    wider = widen(model, layer_name, new_units, seed=3)
    _same_outputs(model, wider)
    if layer_name != "embed":
        grown = wider.get_layer(layer_name)
        assert grown.forward_layer.units == grown.backward_layer.units == new_units
        reader = wider.get_layer("bi2").forward_layer if layer_name == "bi1" else wider.get_layer("head")
        width = new_units * (2 if merge_mode == "concat" else 1)
        assert reader.weights[0].shape[0] == width  # the reader's kernel rows follow both directions


def test_a_widened_bidirectional_model_round_trips_and_noise_only_nearly_keeps_the_outputs(tmp_path):
    model = _stacked()
    noisy = widen(model, "bi1", 12, seed=0, noise_stddev=0.05)
    x = _inputs(model)
    difference = np.abs(noisy.predict(x, verbose=0) - model.predict(x, verbose=0)).max()
    assert 0 < difference < 0.5
    path = str(tmp_path / "wider.keras")
    noisy.save(path)
    np.testing.assert_allclose(keras.models.load_model(path).predict(x, verbose=0), noisy.predict(x, verbose=0))


def test_bidirectional_layers_widen_cannot_trace_are_refused_by_name():
    inputs = keras.Input((7, 5))
    forward, backward = (
        keras.layers.LSTM(4, return_sequences=True),
        keras.layers.GRU(4, return_sequences=True, go_backwards=True),
    )
    x = keras.layers.Bidirectional(forward, backward_layer=backward, name="mixed")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    with pytest.raises(ValueError, match=r"Cannot widen layer 'mixed' \(Bidirectional\): its backward layer is not"):
        widen(model, "mixed", 6)
    first, second = keras.layers.Bidirectional(keras.layers.LSTM(4), merge_mode=None, name="split")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Concatenate()([first, second])))
    with pytest.raises(ValueError, match=r"'split' \(Bidirectional\): its merge_mode is None"):
        widen(model, "split", 6)
