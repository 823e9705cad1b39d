"""QAT of keras.ops nodes: MobileNetV3's hard-sigmoid (relu6(x + 3.0) * 1/6) runs in int8."""

import keras
import numpy as np

import tflite_export
from kopt.quantization import quantize_model

L = keras.layers


def _hard_swish_block():
    inputs = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, name="conv")(inputs)
    gate = L.ReLU(6.0, name="relu6")(x + 3.0) * (1.0 / 6.0)
    x = L.Multiply(name="hard_swish")([x, gate])
    return keras.Model(inputs, L.Dense(10, name="head")(L.GlobalAveragePooling2D()(x)))


def test_ops_nodes_convert_to_int8_and_agree_with_the_keras_model(tmp_path):
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).uniform(0, 1, (64, 16, 16, 3)).astype("float32")
    qat = quantize_model(_hard_swish_block())
    qat(images, training=True)  # sets every range
    path = tflite_export.convert(qat, str(tmp_path / "hard_swish.tflite"), mode="int8")
    ok, reasons = tflite_export.is_fully_integer(path)
    assert ok, reasons
    expected = qat.predict(images, verbose=0)
    assert expected.std(axis=0).max() > 1e-3
    actual = tflite_export.predict(path, images)
    assert np.abs(actual - expected).max() <= 2 * np.ptp(expected) / 255 + 1e-6
