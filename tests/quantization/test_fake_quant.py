"""kopt.quantization.fake_quant: the same numbers as TensorFlow's FakeQuant ops.

``fake_quant`` runs TensorFlow's kernel on this backend; ``reference_fake_quant``,
the keras.ops formula other backends run, is checked against that kernel here.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt.quantization.fake_quant import fake_quant
from kopt.quantization.fake_quant import lowering_active
from kopt.quantization.fake_quant import nudged_range
from kopt.quantization.fake_quant import reference_fake_quant
from kopt.quantization.fake_quant import sanitize_range
from kopt.quantization.fake_quant import tflite_lowering

# Ties in float arithmetic may round either way; TensorFlow's kernel and kopt's
# keras.ops differ in fused multiply-adds, so a few elements may land one step apart.
_MAX_DIFFERING = 0.005


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _assert_matches(actual, expected, scale, magnitude):
    actual, expected = np.asarray(actual), np.asarray(expected)
    difference = np.abs(actual - expected)
    steps = np.broadcast_to(np.asarray(scale, np.float32), difference.shape)
    # ``k * scale + nudged_min`` cancels digits: a few ulps of the range's ends.
    ulps = 8 * np.finfo(np.float32).eps * (np.asarray(magnitude, np.float32) + 1.0)
    assert np.all(difference <= steps + ulps), f"max difference {difference.max()} exceeds one grid step"
    differing = np.mean(difference > ulps)
    assert differing <= _MAX_DIFFERING, f"{differing:.2%} of elements differ"


def _random_case(rng):
    num_bits = int(rng.integers(2, 17))
    narrow_range = bool(rng.integers(0, 2))
    # TFLite ranges contain 0; include ranges touching it.
    low = -float(rng.choice([0.0, rng.uniform(0.0, 1.0), rng.uniform(0.0, 20.0)]))
    high = float(rng.choice([0.0, rng.uniform(0.0, 1.0), rng.uniform(0.0, 20.0)]))
    if high - low < 1e-3:
        high = low + 0.5
    return num_bits, narrow_range, low, high


@pytest.mark.parametrize("seed", range(40))
def test_matches_tensorflow_per_tensor(seed):
    rng = np.random.default_rng(seed)
    num_bits, narrow_range, low, high = _random_case(rng)
    width = high - low
    x = rng.uniform(low - 0.3 * width, high + 0.3 * width, size=(64, 33)).astype("float32")
    actual = reference_fake_quant(x, low, high, num_bits=num_bits, narrow_range=narrow_range)
    expected = tf.quantization.fake_quant_with_min_max_vars(x, low, high, num_bits=num_bits, narrow_range=narrow_range)
    _, _, scale = nudged_range(low, high, num_bits=num_bits, narrow_range=narrow_range)
    _assert_matches(_numpy(actual), expected.numpy(), _numpy(scale), max(-low, high))


@pytest.mark.parametrize("seed", range(20))
def test_matches_tensorflow_per_channel(seed):
    rng = np.random.default_rng(100 + seed)
    num_bits = int(rng.integers(2, 17))
    narrow_range = bool(rng.integers(0, 2))
    channels = 7
    low = -rng.uniform(0.0, 5.0, channels).astype("float32")
    high = rng.uniform(0.01, 5.0, channels).astype("float32")
    x = rng.normal(scale=3.0, size=(5, 4, channels)).astype("float32")
    actual = reference_fake_quant(x, low, high, num_bits=num_bits, narrow_range=narrow_range, per_channel=True)
    expected = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        x, low, high, num_bits=num_bits, narrow_range=narrow_range
    )
    _, _, scale = nudged_range(low, high, num_bits=num_bits, narrow_range=narrow_range)
    _assert_matches(_numpy(actual), expected.numpy(), _numpy(scale), np.maximum(-low, high))


@pytest.mark.parametrize("per_channel", [False, True])
def test_on_tensorflow_equals_the_kernel_the_converter_reads(per_channel):
    # Training and export then round identically, element for element.
    rng = np.random.default_rng(11)
    x = rng.normal(scale=2.0, size=(32, 9)).astype("float32")
    low, high = -rng.uniform(0.1, 3.0, 9).astype("float32"), rng.uniform(0.1, 3.0, 9).astype("float32")
    if per_channel:
        expected = tf.quantization.fake_quant_with_min_max_vars_per_channel(x, low, high, num_bits=5)
    else:
        low, high = float(low[0]), float(high[0])
        expected = tf.quantization.fake_quant_with_min_max_vars(x, low, high, num_bits=5)
    actual = fake_quant(x, low, high, num_bits=5, per_channel=per_channel)
    np.testing.assert_array_equal(_numpy(actual), expected.numpy())


@pytest.mark.parametrize("function", [fake_quant, reference_fake_quant])
def test_outputs_lie_on_the_grid_and_zero_is_exact(function):
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=1000), [0.0]]).astype("float32")
    y = _numpy(function(x, -1.3, 2.1, num_bits=8))
    low, high, scale = (float(_numpy(v)) for v in nudged_range(-1.3, 2.1, num_bits=8))
    assert y[-1] == 0.0
    assert len(np.unique(y)) <= 256
    assert y.min() >= low - 1e-6 and y.max() <= high + 1e-6
    np.testing.assert_allclose((y - low) / scale, np.round((y - low) / scale), atol=1e-3)


@pytest.mark.parametrize("function", [fake_quant, reference_fake_quant])
def test_range_not_containing_zero_is_widened_to_contain_it(function):
    x = np.linspace(-1.0, 3.0, 101).astype("float32")
    actual = _numpy(function(x, 0.5, 2.0))
    expected = tf.quantization.fake_quant_with_min_max_vars(x, 0.0, 2.0).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-6)
    low, high = sanitize_range(keras.ops.convert_to_tensor(-2.0), keras.ops.convert_to_tensor(-1.0))
    assert (float(_numpy(low)), float(_numpy(high))) == (-2.0, 0.0)


@pytest.mark.parametrize("function", [fake_quant, reference_fake_quant])
def test_an_empty_range_gives_finite_values(function):
    y = _numpy(function(np.array([0.0, 1.0, -1.0], "float32"), 0.0, 0.0))
    assert np.all(np.isfinite(y))
    assert y[0] == 0.0


@pytest.mark.parametrize("function", [fake_quant, reference_fake_quant])
@pytest.mark.parametrize("narrow_range", [False, True])
def test_gradient_is_one_inside_the_nudged_range_and_zero_outside(function, narrow_range):
    low_value, high_value = -0.73, 1.91
    low, high, scale = (float(_numpy(v)) for v in nudged_range(low_value, high_value, narrow_range=narrow_range))
    x = tf.constant(np.linspace(low - 0.5, high + 0.5, 997), tf.float32)
    # Steer clear of the boundaries themselves, where float equality decides.
    x = tf.boolean_mask(x, tf.logical_and(tf.abs(x - low) > 1e-4, tf.abs(x - high) > 1e-4))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = function(x, low_value, high_value, narrow_range=narrow_range)
        reference = tf.quantization.fake_quant_with_min_max_vars(x, low_value, high_value, narrow_range=narrow_range)
    gradient = tape.gradient(y, x).numpy()
    inside = (x.numpy() >= low) & (x.numpy() <= high)
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(gradient, inside.astype("float32"))
    np.testing.assert_array_equal(gradient, tape.gradient(reference, x).numpy())


@pytest.mark.parametrize("function", [fake_quant, reference_fake_quant])
def test_per_channel_gradient_uses_each_channels_range(function):
    x = tf.constant([[0.5, 0.5], [2.0, 2.0], [-2.0, -2.0]], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = function(x, [-1.0, -3.0], [1.0, 3.0], per_channel=True)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [[1, 1], [0, 1], [0, 1]])


@pytest.mark.parametrize("function", [fake_quant, reference_fake_quant])
@pytest.mark.parametrize("num_bits", [1, 17, 8.0, "8", None, True])
def test_num_bits_is_validated(function, num_bits):
    with pytest.raises(ValueError, match=r"num_bits must be an integer from 2 to 16. Received: num_bits="):
        function(np.zeros(3, "float32"), -1.0, 1.0, num_bits=num_bits)


@pytest.mark.parametrize("function", [fake_quant, reference_fake_quant])
def test_keeps_the_input_dtype(function):
    x = np.array([0.3, -0.7], "float16")
    y = function(x, -1.0, 1.0)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"


@pytest.mark.parametrize("per_channel", [False, True])
def test_traced_graph_has_the_tensorflow_op_the_converter_reads(per_channel):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 3)).astype("float32")
    low, high = (np.array([-1.0, -0.5, -2.0], "float32"), np.array([1.0, 0.7, 0.2], "float32"))
    if not per_channel:
        low, high = float(low[0]), float(high[0])
    expected = _numpy(fake_quant(x, low, high, per_channel=per_channel))

    @tf.function
    def lowered(values):
        with tflite_lowering():
            return fake_quant(values, low, high, per_channel=per_channel)

    graph = lowered.get_concrete_function(tf.TensorSpec((6, 3), tf.float32)).graph
    op_types = {op.type for op in graph.get_operations()}
    expected_op = "FakeQuantWithMinMaxVarsPerChannel" if per_channel else "FakeQuantWithMinMaxVars"
    assert expected_op in op_types
    assert "Floor" not in op_types
    np.testing.assert_allclose(lowered(x).numpy(), expected, atol=1e-6)


def test_lowering_context_nests_and_restores_on_error():
    assert not lowering_active()
    with pytest.raises(RuntimeError):
        with tflite_lowering():
            with tflite_lowering():
                assert lowering_active()
            assert lowering_active()
            raise RuntimeError("boom")
    assert not lowering_active()


@pytest.mark.parametrize("function", [fake_quant, reference_fake_quant])
def test_the_range_gets_no_gradient(function):
    x = tf.constant([-3.0, 0.2, 3.0])
    low, high = tf.Variable(-1.0), tf.Variable(1.0)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(function(x, low, high))
    assert tape.gradient(y, [low, high]) == [None, None]


def test_a_range_too_narrow_is_widened_around_its_centre():
    # [-0.0, 0.0] and [-1e-7, 1e-7] must stay symmetric (zero point 0 for TFLite's
    # symmetric int8 weights), and a one-sided empty range keeps 0 inside.
    for low, high in ((-0.0, 0.0), (-1e-7, 1e-7), (0.0, 2e-7)):
        new_low, new_high = (
            float(v) for v in sanitize_range(keras.ops.convert_to_tensor(low), keras.ops.convert_to_tensor(high))
        )
        assert new_high - new_low == pytest.approx(1e-6, rel=1e-3)
        assert new_low <= 0.0 <= new_high
        assert new_low + new_high == pytest.approx(low + high, abs=1e-12)
    wide_low, wide_high = sanitize_range(keras.ops.convert_to_tensor(-0.5), keras.ops.convert_to_tensor(0.25))
    assert (float(wide_low), float(wide_high)) == (-0.5, 0.25)
