"""tflite_export on models that are not image classifiers: tokens, several inputs, sequences, RNNs."""

import keras
import numpy as np
import pytest

import tflite_export

L = keras.layers
VOCAB, LENGTH = 50, 12


def _text_classifier():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((LENGTH,), dtype="int32", name="tokens")
    x = L.Embedding(VOCAB, 16)(tokens)
    attended = L.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
    x = L.LayerNormalization()(L.Add()([x, attended]))
    x = L.Dense(16, activation="gelu")(x)
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, L.Dense(3)(x), name="text_classifier")


def _tokens(count, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(count, LENGTH)).astype("int32")


def _two_inputs_two_outputs():
    """Keras input order (tokens, b_features) differs from the file's, which sorts by name."""
    keras.utils.set_random_seed(1)
    tokens = keras.Input((LENGTH,), dtype="int32", name="tokens")
    features = keras.Input((4,), name="b_features")
    embedded = L.Embedding(VOCAB, 8)(tokens)
    pooled = L.GlobalAveragePooling1D()(embedded)
    joined = L.Concatenate()([pooled, L.Dense(8)(features)])
    per_token = L.Dense(5, name="per_token")(embedded)
    return keras.Model([tokens, features], [L.Dense(3, name="label")(joined), per_token], name="two_by_two")


def test_token_input_model_predicts_and_verifies(tmp_path):
    model = _text_classifier()
    path = tflite_export.convert(model, str(tmp_path / "text.tflite"))
    tokens = _tokens(40)
    np.testing.assert_allclose(tflite_export.predict(path, tokens), model.predict(tokens, verbose=0), atol=1e-4)
    labels = np.argmax(model.predict(tokens, verbose=0), -1)
    result = tflite_export.verify(path, model, (tokens, labels))
    assert result["agreement"] == 1.0 and result["tflite_accuracy"] == 1.0
    with pytest.raises(ValueError, match="takes integers"):
        tflite_export.predict(path, tokens + 0.5)


def test_int8_calibration_feeds_token_ids_to_an_integer_input(tmp_path):
    model = _text_classifier()
    path = tflite_export.convert(model, str(tmp_path / "text_int8.tflite"), mode="int8", representative_dataset=_tokens(64))
    report = tflite_export.inspect(path)
    assert [t["dtype"] for t in report["inputs"]] == ["int32"]
    weights = [op["inputs"][1] for op in report["ops"] if op["op"] == "FULLY_CONNECTED"]
    assert weights and all(w["dtype"] == "int8" for w in weights)
    tokens = _tokens(200, seed=1)
    result = tflite_export.verify(path, model, (tokens, np.argmax(model.predict(tokens, verbose=0), -1)))
    assert result["agreement"] >= 0.9, result


def test_several_inputs_and_outputs_follow_the_keras_names_and_order(tmp_path):
    model = _two_inputs_two_outputs()
    path = tflite_export.convert(model, str(tmp_path / "two.tflite"))
    tokens, features = _tokens(30), np.random.default_rng(2).normal(size=(30, 4)).astype("float32")
    expected = model.predict([tokens, features], verbose=0)
    outputs = tflite_export.predict(path, {"tokens": tokens, "b_features": features}, batch_size=8)
    assert [o.shape for o in outputs] == [(30, 3), (30, LENGTH, 5)]
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(got, want, atol=1e-4)
    # verify takes the inputs as Keras does: a list in the model's order.
    result = tflite_export.verify(path, model, ([tokens, features], np.argmax(expected[0], -1)))
    assert result["agreement"] == 1.0 and result["max_abs_diff"] < 1e-4
    with pytest.raises(ValueError, match="keyed by the file's input names"):
        tflite_export.predict(path, {"tokens": tokens})
    # Calibration takes a dict by input name, and a list in the model's order.
    for data in ({"tokens": tokens, "b_features": features}, [tokens, features]):
        int8 = tflite_export.convert(model, str(tmp_path / "two_int8.tflite"), mode="int8", representative_dataset=data)
        assert tflite_export.verify(int8, model, ([tokens, features], np.argmax(expected[0], -1)))["agreement"] >= 0.9


def test_a_sequence_output_is_scored_per_position(tmp_path):
    keras.utils.set_random_seed(3)
    tokens = keras.Input((LENGTH,), dtype="int32", name="tokens")
    model = keras.Model(tokens, L.Dense(4)(L.Embedding(VOCAB, 8)(tokens)), name="tagger")
    path = tflite_export.convert(model, str(tmp_path / "tagger.tflite"))
    inputs = _tokens(20)
    tags = np.argmax(model.predict(inputs, verbose=0), -1)
    tags[0, :6] = (tags[0, :6] + 1) % 4  # 6 wrong tags of 240
    result = tflite_export.verify(path, model, (inputs, tags))
    assert result["agreement"] == 1.0
    assert result["tflite_accuracy"] == pytest.approx(1 - 6 / 240)


@pytest.mark.parametrize(
    "make_layer", [lambda: L.LSTM(8), lambda: L.GRU(8), lambda: L.Bidirectional(L.LSTM(4)), lambda: L.SimpleRNN(8)]
)
def test_recurrent_models_convert_with_a_static_batch_chosen_for_them(tmp_path, make_layer):
    keras.utils.set_random_seed(4)
    sequence = keras.Input((10, 6))
    model = keras.Model(sequence, L.Dense(3)(make_layer()(sequence)), name="rnn")
    with pytest.warns(UserWarning, match="batch_size=1"):
        path = tflite_export.convert(model, str(tmp_path / "rnn.tflite"))
    assert tflite_export.inspect(path)["inputs"][0]["shape_signature"][0] == 1
    inputs = np.random.default_rng(0).normal(size=(7, 10, 6)).astype("float32")
    np.testing.assert_allclose(tflite_export.predict(path, inputs), model.predict(inputs, verbose=0), atol=1e-5)
    # Asked for a dynamic batch, the converter's refusal says what to do.
    with pytest.raises(tflite_export.ConversionError, match="batch_size=1"):
        tflite_export.convert(model, str(tmp_path / "dynamic.tflite"), batch_size=None)


@pytest.mark.parametrize("make_layer", [lambda: L.LSTM(8), lambda: L.Bidirectional(L.GRU(4))])
def test_integer_modes_unroll_recurrent_layers_instead_of_crashing_the_calibrator(tmp_path, make_layer):
    # TensorFlow's calibrator segfaults on a recurrent WHILE loop; kopt converts it unrolled.
    keras.utils.set_random_seed(5)
    sequence = keras.Input((6, 4))
    model = keras.Model(sequence, L.Dense(3)(make_layer()(sequence)), name="rnn_int8")
    inputs = np.random.default_rng(1).normal(size=(64, 6, 4)).astype("float32")
    with pytest.warns(UserWarning, match="batch_size=1"):
        path = tflite_export.convert(model, str(tmp_path / "rnn_int8.tflite"), mode="int8", representative_dataset=inputs)
    report = tflite_export.inspect(path)
    assert "WHILE" not in report["op_counts"] and report["op_counts"]["FULLY_CONNECTED"] >= 6
    np.testing.assert_allclose(tflite_export.predict(path, inputs), model.predict(inputs, verbose=0), atol=0.1)
    # Sequences of any length cannot be unrolled: a clear refusal, not a crash.
    free = keras.Input((None, 4))
    ragged = keras.Model(free, L.Dense(3)(L.LSTM(4)(free)))
    with pytest.raises(ValueError, match="fixed number of time steps"):
        tflite_export.convert(ragged, str(tmp_path / "ragged.tflite"), mode="int8", representative_dataset=inputs, batch_size=1)
