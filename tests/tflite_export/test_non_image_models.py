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
    path = tflite_export.convert(
        model, str(tmp_path / "text_int8.tflite"), mode="int8", representative_dataset=_tokens(64)
    )
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
