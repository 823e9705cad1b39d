"""MultiHeadAttention in QAT: the split into projections and core, and the transformer's int8 file."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import quantize_annotate_model
from kopt.quantization import quantize_model
from kopt.quantization import strip_quantization
from kopt.quantization.attention import AttentionCore
from kopt.quantization.attention import split_attention
from kopt.quantization.splits import split_annotated

L = keras.layers


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _model_around(attention, *, cross=False, causal=False, masked=False):
    query = keras.Input((6, 8), name="query")
    inputs = [query]
    kwargs = {"use_causal_mask": causal}
    value = query
    if cross:
        value = keras.Input((5, 8), name="value")
        inputs.append(value)
    if masked:
        mask = keras.Input((6, 5 if cross else 6), name="mask", dtype="bool")
        inputs.append(mask)
        kwargs["attention_mask"] = mask
    return keras.Model(inputs, L.Dense(3)(L.Flatten()(attention(query, value, **kwargs))))


@pytest.mark.parametrize("cross, causal, masked", [(False, False, False), (True, False, True), (False, True, False)])
def test_split_attention_computes_the_layer(cross, causal, masked):
    keras.utils.set_random_seed(0)
    attention = L.MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3, name="attention")
    model = _model_around(attention, cross=cross, causal=causal, masked=masked)
    feeds = [_inputs((2, 6, 8))]
    if cross:
        feeds.append(_inputs((2, 5, 8), seed=1))
    if masked:
        feeds.append(np.random.default_rng(2).random((2, 6, 5 if cross else 6)) > 0.3)
    expected = model.predict(feeds, verbose=0)
    # What quantize_apply wraps: the annotated model, its attention split.
    split = split_annotated(quantize_annotate_model(model), advice="")
    inner = [layer.layer for layer in split.layers if hasattr(layer, "layer")]
    assert sum(isinstance(layer, AttentionCore) for layer in inner) == 1
    assert not any(isinstance(layer, L.MultiHeadAttention) for layer in inner)
    np.testing.assert_allclose(split.predict(feeds, verbose=0), expected, atol=1e-5)
    # After QAT and strip_quantization the split float model remains.
    stripped = strip_quantization(quantize_model(model))
    assert sum(isinstance(layer, AttentionCore) for layer in stripped.layers) == 1


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: L.MultiHeadAttention(2, 4, attention_axes=(1, 2), name="attention"), "attention_axes"),
        (lambda: L.MultiHeadAttention(2, 4, use_gate=True, name="attention"), "use_gate"),
    ],
)
def test_unsupported_attention_is_refused_with_the_layer_and_reason(make, reason):
    layer = make()
    x = np.zeros((1, 3, 4, 8), "float32") if reason == "attention_axes" else np.zeros((1, 3, 8), "float32")
    layer(x, x)
    with pytest.raises(ValueError, match=f"'attention'.*{reason}"):
        split_attention(layer)


def test_attention_returning_scores_is_refused_before_training():
    query = keras.Input((6, 8))
    output, scores = L.MultiHeadAttention(2, 4, name="attention")(query, query, return_attention_scores=True)
    model = keras.Model(query, [output, scores])
    with pytest.raises(ValueError, match="'attention'.*return_attention_scores=True"):
        quantize_model(model)


def test_attention_over_keras_masked_inputs_is_refused():
    tokens = keras.Input((6,), dtype="int32")
    x = L.Embedding(10, 8, mask_zero=True)(tokens)
    model = keras.Model(tokens, L.MultiHeadAttention(2, 4, name="attention")(x, x))
    with pytest.raises(ValueError, match="'attention'.*Keras mask.*attention_mask"):
        quantize_model(model)


def test_attention_core_checks_its_arguments_and_round_trips(tmp_path):
    with pytest.raises(ValueError, match="num_heads must be a positive int. Received: num_heads=0"):
        AttentionCore(0, 4)
    with pytest.raises(ValueError, match="dropout must be in \\[0, 1\\). Received: dropout=1.5"):
        AttentionCore(2, 4, dropout=1.5)
    inputs = keras.Input((5, 8))
    model = keras.Model(inputs, AttentionCore(2, 4, use_causal_mask=True, name="core")(inputs, inputs, inputs))
    path = str(tmp_path / "core.keras")
    model.save(path)
    x = _inputs((2, 5, 8))
    np.testing.assert_allclose(keras.models.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))


def _encoder():
    tokens = keras.Input((12,), dtype="int32", name="tokens")
    x = L.Embedding(40, 16, name="embedding")(tokens)
    attended = L.MultiHeadAttention(num_heads=2, key_dim=8, name="attention")(x, x)
    x = L.LayerNormalization(name="norm")(L.Add()([x, attended]))
    x = L.LayerNormalization(name="ffn_norm")(L.Add()([x, L.Dense(16)(L.Dense(32, activation="gelu")(x))]))
    return keras.Model(tokens, L.Dense(4, name="logits")(L.GlobalAveragePooling1D()(x)))


def _learnable_tokens(count, seed):
    # The label is which quarter of the vocabulary the most tokens come from.
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=count)
    tokens = rng.integers(0, 40, size=(count, 12))
    favoured = rng.random((count, 12)) < 0.5
    tokens = np.where(favoured, labels[:, None] * 10 + rng.integers(0, 10, size=(count, 12)), tokens)
    return tokens.astype("int32"), labels


def test_transformer_qat_file_has_int8_weights_and_agrees(tmp_path):
    keras.utils.set_random_seed(1)
    x, y = _learnable_tokens(1024, seed=0)
    x_test, y_test = _learnable_tokens(400, seed=1)
    qat = quantize_model(_encoder())
    qat.compile(
        keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    qat.fit(x, y, batch_size=32, epochs=3, verbose=0)
    assert qat.evaluate(x_test, y_test, verbose=0)[1] > 0.6  # it learned the task

    path = tflite_export.convert(qat, str(tmp_path / "encoder.tflite"), mode="int8")
    ops = tflite_export.inspect(path)["ops"]
    fully_connected = [op for op in ops if op["op"] == "FULLY_CONNECTED"]
    assert len(fully_connected) == 7  # 4 attention projections, 2 FFN, logits
    for op in fully_connected:  # int8 activations and weights, int32 bias
        assert [t["dtype"] for t in op["inputs"][:3]] == ["int8", "int8", "int32"], op
    gather = next(op for op in ops if op["op"] == "GATHER")
    assert gather["inputs"][0]["dtype"] == "int8"  # the embedding table
    result = tflite_export.verify(path, qat, (x_test, y_test))
    assert result["agreement"] >= 0.99, result

    saved = str(tmp_path / "qat.keras")
    qat.save(saved)
    np.testing.assert_allclose(
        keras.models.load_model(saved).predict(x_test[:16], verbose=0), qat.predict(x_test[:16], verbose=0), atol=1e-5
    )
