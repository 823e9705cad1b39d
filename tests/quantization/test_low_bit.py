"""The maths of binary and ternary weights: values, scales, thresholds, straight-through gradients."""

import numpy as np
import pytest
import tensorflow as tf

from kopt.quantization import low_bit


def _per_channel(values, axes=1):
    values = np.asarray(values)
    return values.reshape(-1, int(np.prod(values.shape[values.ndim - axes :])))


@pytest.mark.parametrize("shape, axis, axes", [((3, 3, 4, 6), -1, 1), ((5, 7), -1, 1), ((3, 3, 4, 2), (-2, -1), 2)])
def test_binarize_gives_plus_minus_mean_abs_per_output_channel(shape, axis, axes):
    weights = np.random.default_rng(0).normal(size=shape).astype("float32")
    binary = _per_channel(low_bit.binarize(weights, axis=axis), axes)
    expected_scale = np.abs(_per_channel(weights, axes)).mean(axis=0)
    for channel in range(binary.shape[1]):
        np.testing.assert_allclose(sorted(set(binary[:, channel])), [-expected_scale[channel], expected_scale[channel]])
    np.testing.assert_array_equal(np.sign(binary), np.where(_per_channel(weights, axes) >= 0, 1.0, -1.0))


def test_binarize_with_one_scale_and_sign_of_zero():
    weights = np.array([[0.0, -1.0], [2.0, -3.0]], "float32")
    np.testing.assert_allclose(low_bit.binarize(weights, axis=None), [[1.5, -1.5], [1.5, -1.5]])


def test_ternarize_uses_twn_threshold_and_the_mean_above_it():
    weights = np.random.default_rng(1).normal(size=(3, 3, 8, 5)).astype("float32")
    ternary = _per_channel(low_bit.ternarize(weights), 1)
    flat = _per_channel(weights, 1)
    for channel in range(flat.shape[1]):
        magnitude = np.abs(flat[:, channel])
        kept = magnitude > 0.7 * magnitude.mean()
        alpha = magnitude[kept].mean()
        expected = np.where(kept, np.sign(flat[:, channel]) * alpha, 0.0)
        np.testing.assert_allclose(ternary[:, channel], expected, rtol=1e-6)
        values = np.unique(ternary[:, channel])
        assert len(values) == 3 and values[1] == 0.0 and values[0] == -values[2]


def test_ternarize_keeps_zeros_and_an_empty_channel_stays_zero():
    weights = np.array([[0.0, 0.0], [0.5, 0.0], [-0.4, 0.0], [0.0, 0.0]], "float32")
    result = np.asarray(low_bit.ternarize(weights))
    assert np.isfinite(result).all()
    np.testing.assert_allclose(result, [[0.0, 0.0], [0.45, 0.0], [-0.45, 0.0], [0.0, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(low_bit.binarize(np.zeros((3, 2), "float32")), np.zeros((3, 2)))


def test_a_given_scale_replaces_the_computed_one():
    weights = np.array([[0.5, -0.1], [-0.3, 0.2]], "float32")
    np.testing.assert_allclose(low_bit.binarize(weights, scale=np.array([2.0, 3.0])), [[2.0, -3.0], [-2.0, 3.0]])
    np.testing.assert_allclose(low_bit.ternarize(weights, scale=np.array([2.0, 3.0])), [[2.0, 0.0], [-2.0, 3.0]])


def test_codes_pass_gradients_straight_through_inside_the_clip_value():
    weights = tf.constant([0.3, -0.8, 1.5, -2.0, 0.01])
    upstream = tf.constant([1.0, 2.0, 3.0, 4.0, 5.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(weights)
        binary = tf.reduce_sum(low_bit.sign_codes(weights, clip_value=1.0) * upstream)
        ternary = tf.reduce_sum(low_bit.ternary_codes(weights, 0.5, clip_value=1.0) * upstream)
    np.testing.assert_allclose(tape.gradient(binary, weights), [1.0, 2.0, 0.0, 0.0, 5.0])
    # The threshold picks the zeros; the gradient is straight through all the same.
    np.testing.assert_allclose(tape.gradient(ternary, weights), [1.0, 2.0, 0.0, 0.0, 5.0])


def test_a_computed_binary_scale_gets_its_exact_gradient_as_in_xnor_net():
    weights = tf.constant([[0.3, -0.2], [-0.6, 0.1], [0.9, 1.4]])
    upstream = tf.constant([[1.0, -1.0], [2.0, 0.5], [-3.0, 1.0]])
    with tf.GradientTape() as tape:
        tape.watch(weights)
        loss = tf.reduce_sum(low_bit.binarize(weights) * upstream)
    gradient = tape.gradient(loss, weights).numpy()
    w, g = weights.numpy(), upstream.numpy()
    signs = np.where(w >= 0, 1.0, -1.0)
    alpha = np.abs(w).mean(axis=0)
    # d/dw_i of sum_j g_j alpha sign(w_j): alpha g_i (straight through, |w_i| <= 1)
    # plus sign(w_i) / n * sum_j g_j sign(w_j) (through alpha = mean |w|).
    expected = alpha * g * (np.abs(w) <= 1.0) + signs / w.shape[0] * (g * signs).sum(axis=0)
    np.testing.assert_allclose(gradient, expected, rtol=1e-5)


def test_channel_shape():
    assert low_bit.channel_shape((3, 3, 8, 2), (-2, -1)) == (8, 2)
    assert low_bit.channel_shape((4, 5)) == (5,)
    assert low_bit.channel_shape((4, 5), None) == ()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda w: low_bit.binarize(w, axis=2), "axis=2"),
        (lambda w: low_bit.binarize(w, axis=()), "axis=()"),
        (lambda w: low_bit.binarize(w, clip_value=0.0), "clip_value=0.0"),
        (lambda w: low_bit.ternarize(w, threshold_ratio=1.0), "threshold_ratio=1.0"),
        (lambda w: low_bit.ternarize(w, threshold_ratio="0.7"), "threshold_ratio='0.7'"),
    ],
)
def test_bad_arguments_name_the_value(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(np.ones((3, 2), "float32"))
