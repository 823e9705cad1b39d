"""kopt.quantization.quantizers: range semantics, serialization, validation."""

import keras
import numpy as np
import pytest

from kopt.quantization.fake_quant import fake_quant
from kopt.quantization.quantizers import AllValuesQuantizer
from kopt.quantization.quantizers import FixedRangeQuantizer
from kopt.quantization.quantizers import LastValueQuantizer
from kopt.quantization.quantizers import MovingAverageQuantizer
from kopt.quantization.quantizers import Quantizer
from kopt.testing import run_serialization_test


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _built(quantizer, shape=(), name="x"):
    layer = keras.layers.Layer()
    return layer, quantizer.build(shape, name, layer)


def _range(variables):
    return float(_numpy(variables["min"])), float(_numpy(variables["max"]))


def test_moving_average_first_batch_sets_the_range_then_averages():
    quantizer = MovingAverageQuantizer(ema_decay=0.9)
    layer, variables = _built(quantizer)
    assert _range(variables) == (0.0, 0.0)
    first = np.array([-2.0, 1.0, 5.0], "float32")
    second = np.array([-1.0, 3.0], "float32")
    outputs = quantizer(first, True, variables)
    assert _range(variables) == (-2.0, 5.0)
    np.testing.assert_allclose(_numpy(outputs), _numpy(fake_quant(first, -2.0, 5.0)))
    outputs = quantizer(second, True, variables)
    expected = (0.9 * -2.0 + 0.1 * -1.0, 0.9 * 5.0 + 0.1 * 3.0)
    np.testing.assert_allclose(_range(variables), expected, rtol=1e-6)
    # The updated range quantizes the batch that updated it.
    np.testing.assert_allclose(_numpy(outputs), _numpy(fake_quant(second, *expected)), atol=1e-6)
    assert [v.trainable for v in layer.weights] == [False, False]


@pytest.mark.parametrize("quantizer_class", [MovingAverageQuantizer, AllValuesQuantizer])
def test_inference_leaves_tracked_ranges_alone(quantizer_class):
    quantizer = quantizer_class()
    _, variables = _built(quantizer)
    quantizer(np.array([-1.0, 2.0], "float32"), True, variables)
    before = _range(variables)
    outputs = quantizer(np.array([-10.0, 0.5, 20.0], "float32"), False, variables)
    assert _range(variables) == before
    np.testing.assert_allclose(_numpy(outputs), _numpy(fake_quant(np.array([-10.0, 0.5, 20.0], "float32"), *before)))


def test_last_value_tracks_the_current_tensor_and_inference_writes_nothing():
    quantizer = LastValueQuantizer()
    _, variables = _built(quantizer, (3,))
    quantizer(np.array([-1.0, 0.5, 2.0], "float32"), True, variables)
    assert _range(variables) == (-1.0, 2.0)
    quantizer(np.array([-0.5, 0.0, 0.25], "float32"), True, variables)
    assert _range(variables) == (-0.5, 0.25)
    values = np.array([-4.0, 0.0, 3.0], "float32")
    outputs = quantizer(values, False, variables)
    assert _range(variables) == (-0.5, 0.25)
    # Inference uses the tensor's own range, not the stored one.
    np.testing.assert_allclose(_numpy(outputs), _numpy(fake_quant(values, -4.0, 3.0)))


def test_last_value_symmetric_narrow_range_is_the_int8_weight_grid():
    quantizer = LastValueQuantizer(num_bits=8, symmetric=True, narrow_range=True)
    _, variables = _built(quantizer, (5,))
    values = np.array([-0.3, 0.1, 0.5, 1.27, -0.7], "float32")
    outputs = _numpy(quantizer(values, True, variables))
    np.testing.assert_allclose(_range(variables), (-1.27, 1.27))
    levels = outputs / (1.27 / 127)
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
    assert np.abs(levels).max() <= 127 + 1e-4


def test_per_axis_ranges_are_per_last_axis_slice():
    quantizer = LastValueQuantizer(per_axis=True, symmetric=True, narrow_range=True)
    _, variables = _built(quantizer, (3, 3, 2, 4))
    kernel = np.random.default_rng(0).normal(size=(3, 3, 2, 4)).astype("float32")
    quantizer(kernel, True, variables)
    magnitude = np.abs(kernel).reshape(-1, 4).max(axis=0)
    np.testing.assert_allclose(_numpy(variables["max"]), magnitude, rtol=1e-6)
    np.testing.assert_allclose(_numpy(variables["min"]), -magnitude, rtol=1e-6)


def test_per_axis_moving_average_tracks_each_channel():
    quantizer = MovingAverageQuantizer(per_axis=True, ema_decay=0.5)
    _, variables = _built(quantizer, (None, 2))
    quantizer(np.array([[0.0, -1.0], [4.0, 1.0]], "float32"), True, variables)
    quantizer(np.array([[0.0, -3.0], [2.0, 1.0]], "float32"), True, variables)
    np.testing.assert_allclose(_numpy(variables["min"]), [0.0, -2.0])
    np.testing.assert_allclose(_numpy(variables["max"]), [3.0, 1.0])


def test_all_values_widens_and_never_narrows():
    quantizer = AllValuesQuantizer()
    _, variables = _built(quantizer)
    for batch, expected in (([-1.0, 2.0], (-1.0, 2.0)), ([0.0, 5.0], (-1.0, 5.0)), ([-0.1, 0.2], (-1.0, 5.0))):
        quantizer(np.array(batch, "float32"), True, variables)
        assert _range(variables) == expected


@pytest.mark.parametrize(
    "quantizer",
    [LastValueQuantizer(), MovingAverageQuantizer(), AllValuesQuantizer(), MovingAverageQuantizer(symmetric=True)],
)
def test_gradient_is_straight_through_not_through_the_tracked_range(quantizer):
    import tensorflow as tf

    _, variables = _built(quantizer, (6,))
    quantizer(tf.constant([-1.0, 0.0, 0.0, 0.0, 0.0, 1.0]), True, variables)
    x = tf.constant([-3.0, -0.5, 0.2, 0.4, 0.9, 2.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = quantizer(x, True, variables)
        loss = tf.reduce_sum(y * tf.range(1.0, 7.0))
    low, high = _range(variables)
    inside = ((x.numpy() >= low) & (x.numpy() <= high)).astype("float32")
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), inside * np.arange(1.0, 7.0))


def test_fixed_range_has_no_variables_and_a_constant_grid():
    quantizer = FixedRangeQuantizer(num_bits=8, init_min=0.0, init_max=1.0)
    layer = keras.layers.Layer()
    assert quantizer.build((4,), "x", layer) == {}
    assert layer.weights == []
    values = np.array([-1.0, 0.2, 0.5, 2.0], "float32")
    for training in (True, False):
        outputs = _numpy(quantizer(values, training, {}))
        np.testing.assert_allclose(outputs, _numpy(fake_quant(values, 0.0, 1.0)))
    assert outputs.min() == 0.0 and outputs.max() == pytest.approx(1.0)


def test_symmetric_moving_average_range():
    quantizer = MovingAverageQuantizer(num_bits=16, symmetric=True, narrow_range=True)
    _, variables = _built(quantizer)
    quantizer(np.array([-0.5, 3.0], "float32"), True, variables)
    assert _range(variables) == (-3.0, 3.0)


def test_ranges_track_inside_a_compiled_training_loop():
    # Quantizers run inside tf.function during fit: updates must persist.
    from kopt.quantization.wrapper import QuantizeLayer

    inputs = keras.Input((3,))
    quantized = QuantizeLayer(MovingAverageQuantizer(ema_decay=0.5))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(quantized))
    model.compile("sgd", "mse")
    first = np.array([[0.0, 1.0, 2.0]] * 4, "float32")
    second = np.array([[-2.0, 0.0, 0.0]] * 4, "float32")
    model.fit(np.concatenate([first, second]), np.zeros((8, 1)), batch_size=4, shuffle=False, verbose=0)
    layer = model.layers[1]
    np.testing.assert_allclose([_numpy(w) for w in layer.weights], [-1.0, 1.0])
    model.predict(second * 10, verbose=0)
    np.testing.assert_allclose([_numpy(w) for w in layer.weights], [-1.0, 1.0])


@pytest.mark.parametrize(
    "quantizer",
    [
        LastValueQuantizer(num_bits=4, per_axis=True, symmetric=True, narrow_range=True),
        MovingAverageQuantizer(num_bits=16, symmetric=True, narrow_range=True, ema_decay=0.99),
        AllValuesQuantizer(num_bits=7, per_axis=True),
        FixedRangeQuantizer(num_bits=8, init_min=-1.0, init_max=127.0 / 128.0, narrow_range=True),
    ],
    ids=lambda quantizer: type(quantizer).__name__,
)
def test_serialization_round_trip(quantizer):
    config = quantizer.get_config()
    restored = run_serialization_test(quantizer, init_kwargs=config)
    assert restored == quantizer
    assert type(quantizer).from_config(config) == quantizer
    serialized = keras.saving.serialize_keras_object(quantizer)
    assert keras.saving.deserialize_keras_object(serialized) == quantizer


def test_equality_compares_type_and_config():
    assert MovingAverageQuantizer() == MovingAverageQuantizer()
    assert MovingAverageQuantizer() != MovingAverageQuantizer(ema_decay=0.9)
    assert MovingAverageQuantizer() != AllValuesQuantizer()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LastValueQuantizer(num_bits=1), "num_bits=1"),
        (lambda: MovingAverageQuantizer(num_bits=17), "num_bits=17"),
        (lambda: AllValuesQuantizer(num_bits=True), "num_bits=True"),
        (lambda: LastValueQuantizer(num_bits=8.0), "num_bits=8.0"),
        (lambda: LastValueQuantizer(per_axis="yes"), "per_axis='yes'"),
        (lambda: LastValueQuantizer(symmetric=1), "symmetric=1"),
        (lambda: AllValuesQuantizer(narrow_range=None), "narrow_range=None"),
        (lambda: MovingAverageQuantizer(ema_decay=1.0), "ema_decay=1.0"),
        (lambda: MovingAverageQuantizer(ema_decay=-0.1), "ema_decay=-0.1"),
        (lambda: MovingAverageQuantizer(ema_decay="0.9"), "ema_decay='0.9'"),
        (lambda: FixedRangeQuantizer(init_min=0.5, init_max=1.0), "init_min=0.5"),
        (lambda: FixedRangeQuantizer(init_min=-1.0, init_max=-0.5), "init_max=-0.5"),
        (lambda: FixedRangeQuantizer(init_min=0.0, init_max=0.0), "init_max=0.0"),
        (lambda: FixedRangeQuantizer(num_bits=0), "num_bits=0"),
    ],
)
def test_arguments_are_validated_naming_the_value(make, message):
    with pytest.raises(ValueError, match="Received: .*" + message.replace("(", r"\(").replace(".", r"\.")):
        make()


def test_per_axis_needs_a_known_last_dimension():
    with pytest.raises(ValueError, match=r"tensor_shape=\(4, None\)"):
        MovingAverageQuantizer(per_axis=True).build((4, None), "x", keras.layers.Layer())


def test_base_class_names_the_missing_method():
    class Incomplete(Quantizer):
        pass

    with pytest.raises(NotImplementedError, match="Incomplete must implement build"):
        Incomplete().build((), "x", None)
    with pytest.raises(NotImplementedError, match="get_config"):
        Incomplete().get_config()


def test_symmetric_range_of_an_all_zero_channel_borrows_the_widest_channel():
    # A pruned conv kernel (3x3x1, 4 filters) whose filters 1 and 3 are all zero.
    kernel = np.zeros((3, 3, 1, 4), "float32")
    kernel[..., 0] = 0.5
    kernel[0, 0, 0, 2] = -2.0
    quantizer = LastValueQuantizer(per_axis=True, symmetric=True, narrow_range=True)
    _, variables = _built(quantizer, kernel.shape)
    quantized = _numpy(quantizer(kernel, True, variables))
    low, high = _numpy(variables["min"]), _numpy(variables["max"])
    np.testing.assert_array_equal(high, [0.5, 2.0, 2.0, 2.0])
    np.testing.assert_array_equal(low, -high)  # symmetric, so TFLite's zero point is 0
    assert not quantized[..., [1, 3]].any()  # the zeros stay exact
    np.testing.assert_allclose(quantized[..., 0], kernel[..., 0], atol=0.5 / 127)


def test_symmetric_range_of_an_all_zero_tensor_is_minus_one_to_one():
    quantizer = LastValueQuantizer(symmetric=True, narrow_range=True)
    _, variables = _built(quantizer, (3, 2))
    quantized = _numpy(quantizer(np.zeros((3, 2), "float32"), True, variables))
    assert _range(variables) == (-1.0, 1.0)
    assert not quantized.any()


def test_a_depthwise_kernel_with_an_empty_channel_keeps_a_symmetric_range():
    from kopt.quantization.registry import DepthwiseKernelQuantizer

    kernel = np.full((3, 3, 2, 2), 0.25, "float32")
    kernel[:, :, 1, 0] = 0.0  # input channel 1, multiplier 0: flat channel 2
    quantizer = DepthwiseKernelQuantizer()
    _, variables = _built(quantizer, kernel.shape)
    quantizer(kernel, True, variables)
    np.testing.assert_array_equal(_numpy(variables["max"]), [0.25, 0.25, 0.25, 0.25])
    np.testing.assert_array_equal(_numpy(variables["min"]), -_numpy(variables["max"]))
