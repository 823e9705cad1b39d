"""LSTM layers as TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM op (convert(..., fuse_lstm=True))."""

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export import fused_lstm

L = keras.layers


def _model(make_layer, head=None, steps=7, features=5):
    inputs = keras.Input((steps, features))
    x = make_layer()(inputs)
    if head is not None:
        x = head(x)
    return keras.Model(inputs, L.Dense(3)(x))


def _data(count=24, steps=7, features=5):
    return np.random.default_rng(0).normal(size=(count, steps, features)).astype("float32")


def _ops(path):
    return {op["op"] for op in tflite_export.inspect(path)["ops"]}


def _convert(model, path, **kwargs):
    with pytest.warns(UserWarning, match="reset_all_variables"):
        return tflite_export.convert(model, path, fuse_lstm=True, **kwargs)


@pytest.mark.parametrize(
    "make_layer, head",
    [(lambda: L.LSTM(6), None), (lambda: L.LSTM(6, return_sequences=True), L.GlobalAveragePooling1D())],
)
@pytest.mark.parametrize("mode", ["float32", "dynamic"])
def test_fused_file_computes_the_lstm_from_zero_state_on_every_call(make_layer, head, mode, tmp_path):
    keras.utils.set_random_seed(0)
    model = _model(make_layer, head)
    x = _data()
    path = _convert(model, str(tmp_path / "m.tflite"), mode=mode)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in _ops(path) and "WHILE" not in _ops(path)
    # predict runs the fixed-batch file one example at a time: each starts from zero state.
    got = tflite_export.predict(path, x)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-5 if mode == "float32" else 0.05)


def test_fused_int8_file_is_fully_integer_and_close_to_the_float_model(tmp_path):
    keras.utils.set_random_seed(0)
    model = _model(lambda: L.LSTM(8))
    x = _data(count=64)
    path = _convert(model, str(tmp_path / "m.tflite"), mode="int8", representative_dataset=x)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in _ops(path)
    integer, reasons = tflite_export.is_fully_integer(path)
    assert integer, reasons
    reference = model.predict(x, verbose=0)
    got = tflite_export.predict(path, x)
    assert np.abs(got - reference).max() < 0.05 * np.abs(reference).max()


def test_default_keeps_the_loop(tmp_path):
    model = _model(lambda: L.LSTM(4))
    with pytest.warns(UserWarning, match="batch_size=1"):
        path = tflite_export.convert(model, str(tmp_path / "m.tflite"))
    assert "WHILE" in _ops(path) and "UNIDIRECTIONAL_SEQUENCE_LSTM" not in _ops(path)


@pytest.mark.parametrize(
    "layer, reason",
    [
        (L.LSTM(4, activation="relu"), "activation is 'relu'"),
        (L.LSTM(4, recurrent_activation="hard_sigmoid"), "recurrent_activation is 'hard_sigmoid'"),
        (L.LSTM(4, go_backwards=True), "go_backwards=True"),
        (L.LSTM(4, use_bias=False), "use_bias=False"),
        (L.GRU(4), "not a keras.layers.LSTM"),
    ],
)
def test_layers_the_fused_op_cannot_compute_keep_the_loop_and_say_why(layer, reason, tmp_path):
    model = _model(lambda: layer)
    assert reason in fused_lstm.why_not_fused(layer)
    assert fused_lstm.fused(model) == (model, [])


def test_a_masked_lstm_keeps_the_loop():
    tokens = keras.Input((6,), dtype="int32")
    lstm = L.LSTM(4)
    keras.Model(tokens, lstm(L.Embedding(10, 3, mask_zero=True)(tokens)))
    assert fused_lstm.why_not_fused(lstm) == "its input carries a mask"


def test_fusing_leaves_the_users_model_alone():
    model = _model(lambda: L.LSTM(4))
    nodes = {layer.name: len(layer._inbound_nodes) for layer in model.layers}
    copy, names = fused_lstm.fused(model)
    assert names == [model.layers[1].name]
    assert isinstance(copy.layers[1], fused_lstm.FusedLSTM) and not any(
        a is b for a, b in zip(copy.layers, model.layers)
    )
    assert {layer.name: len(layer._inbound_nodes) for layer in model.layers} == nodes
    x = _data(count=4)
    np.testing.assert_allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_the_conversion_copy_round_trips_through_a_keras_file(tmp_path):
    copy, _ = fused_lstm.fused(_model(lambda: L.LSTM(4, return_sequences=True), L.GlobalAveragePooling1D()))
    path = str(tmp_path / "fused.keras")
    copy.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[1], fused_lstm.FusedLSTM) and loaded.layers[1].return_sequences
    x = _data(count=4)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), copy.predict(x, verbose=0), atol=1e-6)


def test_fuse_lstm_must_be_a_bool(tmp_path):
    model = _model(lambda: L.LSTM(4))
    with pytest.raises(ValueError, match="fuse_lstm must be True or False. Received: fuse_lstm='yes'"):
        tflite_export.convert(model, str(tmp_path / "m.tflite"), fuse_lstm="yes")
