"""QAT computes what the int8 file computes: integer accumulators, XNNPACK's requantization, the converter's scales."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tflite_export
from kopt.quantization import QuantizeWrapper
from kopt.quantization import file_ops
from kopt.quantization import integer_grid
from kopt.quantization import quantize_model
from kopt.quantization.fake_quant import divide_exactly
from kopt.quantization.fake_quant import file_scale

L = keras.layers


def test_to_grid_rounds_and_passes_gradients_through():
    values = tf.Variable([0.29, -0.51, 1.0])
    with tf.GradientTape() as tape:
        steps = integer_grid.to_grid(values, np.float32(0.1))
        total = tf.reduce_sum(steps * tf.constant([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(steps.numpy(), [3.0, -5.0, 10.0])
    np.testing.assert_allclose(tape.gradient(total, values).numpy(), [10.0, 20.0, 30.0], rtol=1e-6)


def test_a_depthwise_kernel_takes_one_scale_per_input_channel_and_multiplier():
    layer = L.DepthwiseConv2D(3, depth_multiplier=2)
    kernel = np.ones((3, 3, 2, 2), "float32") * np.array([1.0, 2.0, 3.0, 4.0], "float32").reshape(2, 2)
    steps = integer_grid.kernel_to_grid(layer, kernel, np.array([1.0, 0.5, 0.25, 0.125], "float32"))
    np.testing.assert_array_equal(np.asarray(steps)[0, 0], [[1.0, 4.0], [12.0, 32.0]])


@pytest.mark.parametrize(
    "layer, dtype, expected",
    [
        (L.Conv2D(4, 3), "float32", True),
        (L.DepthwiseConv2D(3), "float32", True),
        (L.Dense(4), "float32", True),
        (L.Conv2D(4, 3), "float16", False),  # half precision cannot hold an int32 sum
        (L.Conv2D(4, 3, data_format="channels_first"), "float32", False),
        (L.Conv2DTranspose(4, 3), "float32", False),
        (L.LayerNormalization(), "float32", False),
    ],
)
def test_which_layers_accumulate_exactly(layer, dtype, expected):
    assert integer_grid.accumulates_exactly(layer, dtype) is expected


def test_requantized_add_is_xnnpacks_fixed_point_add():
    rng = np.random.default_rng(0)
    a_scale, b_scale, out_scale = np.float32(0.047227588), np.float32(0.047502477), np.float32(0.02110217)
    a_steps = rng.integers(-255, 256, size=200_000)
    b_steps = rng.integers(-255, 256, size=200_000)
    a = (a_steps * a_scale).astype("float32")
    b = (b_steps * b_scale).astype("float32")
    result = np.asarray(integer_grid.requantized_add(a, b, a_scale, b_scale, out_scale))
    # The kernel's arithmetic, in int64 (>> on negative numbers floors, as the kernel's does).
    a_ratio, b_ratio = np.float32(a_scale / out_scale), np.float32(b_scale / out_scale)
    shift = 20 - int(np.floor(np.log2(max(a_ratio, b_ratio))))
    a_mult, b_mult = int(np.rint(a_ratio * 2.0**shift)), int(np.rint(b_ratio * 2.0**shift))
    expected = (a_steps.astype(np.int64) * a_mult + b_steps.astype(np.int64) * b_mult + (1 << (shift - 1))) >> shift
    np.testing.assert_array_equal(np.round(result / out_scale).astype(int), expected)
    exact = np.round((a_steps * np.float64(a_scale) + b_steps * np.float64(b_scale)) / np.float64(out_scale))
    assert np.any(exact != expected), "the data never hits a case where the fixed-point add differs"


def test_file_scale_is_computed_in_float64_like_the_converter():
    rng = np.random.default_rng(1)
    low = -rng.uniform(0.1, 8.0, size=2000).astype("float32")
    high = rng.uniform(0.1, 8.0, size=2000).astype("float32")
    expected = ((high.astype(np.float64) - low.astype(np.float64)) / 255.0).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(file_scale(low, high, num_bits=8)), expected)
    in_float32 = (high - low) / np.float32(255.0)
    assert np.any(in_float32 != expected), "float32 arithmetic would have given the same steps"


def test_division_by_a_constant_is_exact_inside_tf_function():
    values = tf.Variable(np.random.default_rng(2).uniform(0.5, 3.0, size=5000).astype("float32"))
    graph = tf.function(lambda: (divide_exactly(values, 255.0), values / 255.0))()
    eager = values.numpy() / np.float32(255.0)
    np.testing.assert_array_equal(graph[0].numpy(), eager)
    assert np.any(graph[1].numpy() != eager), "the graph optimizer no longer rewrites x / 255.0"


def _residual_net(blocks=6, width=16):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(width, 3, padding="same", use_bias=False)(inputs)))
    for _ in range(blocks):
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(width, 3, padding="same", use_bias=False)(x)))
        y = L.DepthwiseConv2D(3, padding="same")(y)
        y = L.BatchNormalization()(L.Conv2D(width, 1, use_bias=False)(y))
        x = L.ReLU()(L.Add()([x, y]))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10)(x))


@pytest.fixture(scope="module")
def calibrated_residual_net():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(96, 12, 12, 3)).astype("float32")
    model = _residual_net()
    model(images[:64], training=True)
    qat = quantize_model(model)
    for batch in np.split(images[:64], 2):
        qat(batch, training=True)
    # Every quantized tensor the file keeps, as an output, so each layer is compared.
    tensors = [layer.output for layer in qat.layers if isinstance(layer, QuantizeWrapper) and layer.output_range()]
    return keras.Model(qat.inputs, tensors), images[64:]  # (not the probe_model fixture: module scope)


def test_every_quantized_tensor_of_the_file_equals_the_qat_models(calibrated_residual_net, steps_apart, tmp_path):
    probe, images = calibrated_residual_net
    path = tflite_export.convert(probe, str(tmp_path / "probe.tflite"), mode="int8")
    apart = steps_apart(probe, path, images)
    assert len(apart) > 20
    np.testing.assert_array_equal(apart, 0.0)
    probe.save(str(tmp_path / "probe.keras"))  # the grids are found again when the model is loaded
    loaded = keras.models.load_model(str(tmp_path / "probe.keras"))
    np.testing.assert_array_equal(steps_apart(loaded, path, images), 0.0)


def test_without_the_integer_grid_the_file_drifts_from_the_qat_model(
    calibrated_residual_net, steps_apart, tmp_path, monkeypatch
):
    probe, images = calibrated_residual_net
    path = tflite_export.convert(probe, str(tmp_path / "probe.tflite"), mode="int8")
    monkeypatch.setattr(integer_grid, "accumulates_exactly", lambda layer, dtype: False)
    monkeypatch.setattr(file_ops, "integer_op", lambda wrapper, inputs: None)
    assert steps_apart(probe, path, images).max() >= 1.0


def test_a_qat_model_with_integer_grid_inference_still_learns():
    images = np.random.default_rng(3).normal(size=(64, 12, 12, 3)).astype("float32")
    labels = np.random.default_rng(4).integers(0, 10, size=64)
    qat = quantize_model(_residual_net(blocks=2))
    qat.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    history = qat.fit(images, labels, epochs=6, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
