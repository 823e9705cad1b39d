"""First-order Taylor importance, and channel_plan taking precomputed scores."""

import keras
import numpy as np
import pytest

from kopt.pruning import channel_plan
from kopt.pruning import prune_channels
from kopt.pruning import taylor_importance


def _model():
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, activation="relu", name="hidden"), keras.layers.Dense(2, name="head")]
    )
    hidden = np.zeros((6, 4), "float32")
    hidden[0, 0] = 1.0  # unit 0 reads feature 0, which decides the label
    hidden[1, 1] = 5.0  # unit 1 is large but its feature is noise the head ignores
    hidden[2, 2] = 0.2
    hidden[3, 3] = 0.1
    head = np.zeros((4, 2), "float32")
    head[0] = [2.0, -2.0]
    head[1] = [0.01, 0.0]
    head[2] = [0.3, -0.3]
    head[3] = [0.1, -0.1]
    model.get_layer("hidden").set_weights([hidden, np.zeros(4, "float32")])
    model.get_layer("head").set_weights([head, np.zeros(2, "float32")])
    return model


def test_taylor_scores_the_channel_the_loss_uses_over_the_largest_one():
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(256, 6))).astype("float32")
    y = (x[:, 0] < 0.7).astype("int64")  # label 1 when the first feature is small: unit 0 matters
    scores = taylor_importance(_model(), (x, y), batch_size=64)
    assert set(scores) == {"hidden", "head"} and scores["hidden"].shape == (4,)
    assert scores["hidden"][0] > scores["hidden"][1]
    # L1 keeps the large, useless unit 1; Taylor keeps unit 0.
    assert channel_plan(_model(), {"hidden": 0.75})["layers"]["hidden"]["removed"] == [0, 2, 3]
    taylor_plan = channel_plan(_model(), {"hidden": 0.75}, importance=scores)
    assert 0 not in taylor_plan["layers"]["hidden"]["removed"] and taylor_plan["importance"] == "custom"
    assert prune_channels(_model(), {"hidden": 0.5}, importance=scores).get_layer("hidden").units == 2


def test_a_one_logit_binary_model_is_scored_with_binary_cross_entropy():
    # Its logit z = l1 - l0 gives the two-logit model's class probabilities, so the losses and scores are equal.
    two = _model()
    one = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, activation="relu", name="hidden"), keras.layers.Dense(1, name="head")]
    )
    one.get_layer("hidden").set_weights(two.get_layer("hidden").get_weights())
    head = two.get_layer("head").get_weights()[0]
    one.get_layer("head").set_weights([head[:, 1:] - head[:, :1], np.zeros(1, "float32")])
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(256, 6))).astype("float32")
    y = (x[:, 0] < 0.7).astype("int64")
    expected, scores = taylor_importance(two, (x, y), batch_size=64), taylor_importance(one, (x, y), batch_size=64)
    np.testing.assert_allclose(scores["hidden"], expected["hidden"], rtol=1e-4, atol=1e-7)
    assert scores["hidden"][0] > scores["hidden"][1]


def test_bad_arguments_and_scores_are_refused():
    x, y = np.ones((4, 6), "float32"), np.zeros(4, "int64")
    with pytest.raises(ValueError, match="batch_size=0"):
        taylor_importance(_model(), (x, y), batch_size=0)
    with pytest.raises(ValueError, match="max_batches=0"):
        taylor_importance(_model(), (x, y), max_batches=0)
    with pytest.raises(ValueError, match="shape"):
        channel_plan(_model(), {"hidden": 0.5}, importance={"hidden": np.ones((2, 2))})
    with pytest.raises(ValueError, match="has 4 channels"):
        channel_plan(_model(), {"hidden": 0.5}, importance={"hidden": np.ones(3)})
    with pytest.raises(ValueError, match="no scores for layer 'hidden'"):
        channel_plan(_model(), {"hidden": 0.5}, importance={"head": np.ones(2)})


def test_a_transposed_convolution_is_scored_by_its_output_channels():
    import tensorflow as tf

    keras.utils.set_random_seed(3)
    inputs = keras.Input((4, 4, 2))
    up = keras.layers.Conv2DTranspose(3, 2, strides=2, name="up")
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(up(inputs))))
    kernel, bias = up.get_weights()  # (2, 2, 3 out, 2 in)
    kernel[:, :, 1, :] *= 1e-3  # output channel 1 is the smallest by L1
    up.set_weights([kernel, bias])
    x = np.random.default_rng(3).normal(size=(8, 4, 4, 2)).astype("float32")
    y = np.arange(8) % 2
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, model(x, training=False))
    kernel_gradient, bias_gradient = (np.asarray(g) for g in tape.gradient(loss, [up.kernel.value, up.bias.value]))
    expected = ((kernel_gradient * kernel).sum(axis=(0, 1, 3)) + bias_gradient * bias) ** 2
    scores = taylor_importance(model, (x, y), batch_size=8)
    np.testing.assert_allclose(scores["up"], expected, rtol=1e-4)
    assert channel_plan(model, {"up": 0.34})["layers"]["up"]["removed"] == [1]
