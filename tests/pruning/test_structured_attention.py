"""Structured pruning of a transformer block: whole attention heads and the feed-forward width."""

import keras
import numpy as np
import pytest

from kopt.pruning import channel_plan
from kopt.pruning import prune_channels

L = keras.layers


def _block(heads=4, **attention_kwargs):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 16))
    attended = L.MultiHeadAttention(heads, 8, name="attention", **attention_kwargs)(inputs, inputs)
    x = L.LayerNormalization(name="norm")(L.Add()([inputs, attended]))
    hidden = L.Dense(32, activation="gelu", name="ffn_in")(x)
    x = L.Add()([x, L.Dense(16, name="ffn_out")(hidden)])
    return keras.Model(inputs, L.Dense(3, name="logits")(L.GlobalAveragePooling1D()(x)))


def test_the_plan_prunes_heads_and_feed_forward_width_and_keeps_the_residual_stream():
    plan = channel_plan(_block(), 0.5)
    groups = {tuple(group["layers"]): group for group in plan["groups"]}
    assert groups[("attention",)]["channels"] == 4 and groups[("attention",)]["kept"] == 2
    assert groups[("ffn_in",)]["kept"] == 16
    assert groups[("ffn_out",)]["frozen"]  # added to the residual stream, which LayerNormalization reads whole


def test_removing_heads_drops_exactly_their_contribution():
    model = _block()
    plan = channel_plan(model, {"attention": 0.5})
    removed = plan["layers"]["attention"]["removed"]
    smaller = prune_channels(model, {"attention": 0.5})
    attention = smaller.get_layer("attention")
    assert (
        attention.get_config()["num_heads"] == 2
        and attention.count_params() < model.get_layer("attention").count_params()
    )
    # The same function as the original with the removed heads' output projection zeroed.
    original = model.get_layer("attention")
    weights = original.get_weights()
    output_kernel = next(i for i, v in enumerate(original.weights) if v.path.endswith("attention_output/kernel"))
    weights[output_kernel][removed] = 0.0
    original.set_weights(weights)
    x = np.random.default_rng(0).normal(size=(4, 6, 16)).astype("float32")
    np.testing.assert_allclose(smaller.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_heads_are_scored_by_their_weights():
    model = _block()
    attention = model.get_layer("attention")
    weights = attention.get_weights()
    for i, variable in enumerate(attention.weights):  # make head 2 the smallest everywhere
        if variable.path.endswith("kernel"):
            axis = 0 if "attention_output" in variable.path else 1
            index = [slice(None)] * weights[i].ndim
            index[axis] = 2
            weights[i][tuple(index)] *= 1e-3
    attention.set_weights(weights)
    assert channel_plan(model, {"attention": 0.25})["layers"]["attention"]["removed"] == [2]


def test_attention_the_split_cannot_slice_blocks_pruning_with_its_name():
    with pytest.raises(ValueError, match="'attention' is a MultiHeadAttention"):
        channel_plan(_block(use_gate=True), {"attention": 0.5})


def test_a_vit_with_a_constant_position_table_prunes_its_heads_and_feed_forward_width(tmp_path):
    """Patches from a strided convolution plus a position table computed once (``x + table``, a
    ``keras.ops`` add of a constant): it was refused as an op structured pruning cannot slice."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Reshape((16, 16))(keras.layers.Conv2D(16, 4, strides=4, name="patches")(inputs))
    x = x + keras.layers.Embedding(16, 16, name="positions")(keras.ops.arange(16))
    attended = keras.layers.MultiHeadAttention(4, 4, name="mha")(x, x)
    x = keras.layers.Add()([x, attended])
    x = keras.layers.Add()([x, keras.layers.Dense(16, name="mlp2")(keras.layers.Dense(32, name="mlp1")(x))])
    model = keras.Model(inputs, keras.layers.Dense(10, name="head")(keras.layers.GlobalAveragePooling1D()(x)))
    plan = channel_plan(model, 0.5)
    # The residual stream is read whole by the attention, so the patches keep their channels.
    assert plan["layers"]["patches"]["channels_after"] == 16 and plan["layers"]["mlp1"]["channels_after"] == 16
    smaller = prune_channels(model, 0.5)
    assert smaller.get_layer("mha").num_heads == 2 and smaller.get_layer("mlp1").units == 16
    images = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    path = str(tmp_path / "vit.keras")
    smaller.save(path)
    np.testing.assert_allclose(keras.models.load_model(path)(images), smaller(images), atol=1e-6)
    np.testing.assert_allclose(prune_channels(model, 0.0)(images), model(images), atol=1e-5)
