"""Tests for tflite_export.explicit_padding: SAME padding back to PAD + VALID, same arithmetic."""

import keras
import numpy as np

import tflite_export
from tflite_export.explicit_padding import explicit_depthwise_padding
from tflite_export.flatbuffer import TFLiteFlatbuffer


def _convert(model, tmp_path):
    path = tflite_export.convert(model, tmp_path / "m.tflite")
    with open(path, "rb") as handle:
        return handle.read()


def _run(data, images):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data, num_threads=1)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_even_same_padding_becomes_a_pad_op_with_identical_outputs(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((9, 9, 3))
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same")(inputs)  # 9 -> 5: one row each side
    x = keras.layers.DepthwiseConv2D(5, padding="same")(x)  # two each side
    model = keras.Model(inputs, keras.layers.Conv2D(4, 1, padding="same")(x))
    data = _convert(model, tmp_path)
    rewritten = explicit_depthwise_padding(data)
    ops = TFLiteFlatbuffer(rewritten).ops
    assert [op.name for op in ops] == ["PAD", "CONV_2D", "PAD", "DEPTHWISE_CONV_2D", "CONV_2D"]
    flat = TFLiteFlatbuffer(rewritten)
    assert [flat.values(ops[i].inputs[1]).tolist() for i in (0, 2)] == [
        [[0, 0], [1, 1], [1, 1], [0, 0]],
        [[0, 0], [2, 2], [2, 2], [0, 0]],
    ]
    images = np.random.default_rng(0).random((3, 9, 9, 3), np.float32)
    np.testing.assert_allclose(_run(rewritten, images), _run(data, images), rtol=1e-5, atol=1e-6)


def test_uneven_padding_and_valid_files_are_left_as_they_are(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(inputs)  # 8 -> 4: 0 before, 1 after
    data = _convert(keras.Model(inputs, keras.layers.DepthwiseConv2D(3)(x)), tmp_path)
    assert explicit_depthwise_padding(data) == data
