"""Model inputs round like the runtime: the QAT model and its int8 file see the same pixels.

Images scaled as ``x / 127.5 - 1`` (MobileNet's preprocessing) lie exactly half-way
between the points of the input's int8 grid. TensorFlow's FakeQuant rounds such
ties up, LiteRT's XNNPACK ``QUANTIZE`` rounds them to even, so before kopt's
QuantizeLayer rounded like the runtime, half the pixels entered the file one step
away from the QAT model's, and a MobileNetV2 file agreed with its own QAT model on
about half of CIFAR-10 test images.
"""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import quantize_model
from kopt.quantization.fake_quant import fake_quant
from kopt.quantization.fake_quant import tflite_lowering

L = keras.layers
HALF_STEP_PIXELS = ((2.0 * np.arange(256) - 255.0) / 255.0).astype("float32")  # p / 127.5 - 1


def test_ties_even_rounds_x_over_scale_half_to_even_then_adds_the_zero_point():
    scale = np.float32(2.0 / 255.0)
    expected = np.clip(np.rint(HALF_STEP_PIXELS / scale), -128, 127) * scale
    even = keras.ops.convert_to_numpy(fake_quant(HALF_STEP_PIXELS, -1.0, 1.0, ties="even"))
    up = keras.ops.convert_to_numpy(fake_quant(HALF_STEP_PIXELS, -1.0, 1.0))
    np.testing.assert_allclose(even, expected, atol=1e-6)
    assert np.count_nonzero(np.abs(even - up) > 1e-6) == 128  # every negative tie moves
    with tflite_lowering():  # the converter reads the plain FakeQuant op
        lowered = keras.ops.convert_to_numpy(fake_quant(HALF_STEP_PIXELS, -1.0, 1.0, ties="even"))
    np.testing.assert_array_equal(lowered, up)
    with pytest.raises(ValueError, match="Received: ties='nearest'"):
        fake_quant(HALF_STEP_PIXELS, -1.0, 1.0, ties="nearest")


def test_ties_even_passes_gradients_straight_through_inside_the_range():
    import tensorflow as tf

    values = tf.Variable(HALF_STEP_PIXELS * 1.5)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(fake_quant(values, -1.0, 1.0, ties="even"))
    gradient = tape.gradient(total, values).numpy()
    inside = np.abs(HALF_STEP_PIXELS * 1.5) <= 0.99
    assert np.all(gradient[inside] == 1.0) and np.all(gradient[np.abs(HALF_STEP_PIXELS * 1.5) > 1.01] == 0.0)


@pytest.fixture(scope="module")
def cifar_half_step_images(cifar):
    return cifar("test", 64)[0] / 127.5 - 1.0


def test_first_convolution_of_the_file_matches_the_qat_model_on_half_step_images(tmp_path, cifar_half_step_images):
    """MobileNetV2's stem on its own preprocessing: one output step apart at most, as rounding allows."""
    images = cifar_half_step_images
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = L.BatchNormalization()(x)
    model = keras.Model(inputs, L.ReLU(6.0)(x))
    qat = quantize_model(model)
    qat(images, training=True)  # one training pass sets every range
    path = tflite_export.convert(qat, str(tmp_path / "stem.tflite"), mode="int8")
    ranges = [w for w in qat.weights if "output_0" in w.path or "activation_output" in w.path]
    low, high = (float(keras.ops.convert_to_numpy(w)) for w in ranges[:2])
    step = (high - low) / 255.0
    keras_out = qat.predict(images, verbose=0)
    file_out = tflite_export.predict(path, images)
    steps = np.abs(keras_out - file_out) / step
    assert steps.max() <= 1.01, steps.max()
    assert np.mean(steps > 0.5) < 0.005, np.mean(steps > 0.5)
