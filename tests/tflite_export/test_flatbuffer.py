"""tflite_export.flatbuffer: reading operators, tensors and constants from a .tflite file."""

import os

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export.flatbuffer import TFLiteFlatbuffer
from tflite_export.flatbuffer import read_tflite


def _dense_model():
    rng = np.random.default_rng(3)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="fc")])
    kernel = rng.uniform(0.5, 1.5, (6, 4)).astype("float32")
    model.get_layer("fc").set_weights([kernel, rng.uniform(0.5, 1.5, 4).astype("float32")])
    return model, kernel


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    model, kernel = _dense_model()
    directory = tmp_path_factory.mktemp("flatbuffer")
    calibration = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    paths = {
        mode: tflite_export.convert(
            model,
            os.path.join(directory, f"{mode}.tflite"),
            mode=mode,
            representative_dataset=calibration if mode == "int8" else None,
        )
        for mode in ("float32", "float16", "int8")
    }
    return paths, kernel


def test_float_file_ops_tensors_and_values(files):
    paths, kernel = files
    model = TFLiteFlatbuffer(paths["float32"])
    assert model.label == paths["float32"] and model.subgraph_count == 1
    assert [(op.index, op.name, op.kind) for op in model.ops] == [(0, "FULLY_CONNECTED", "builtin")]
    (op,) = model.ops
    assert op.inputs[0] == model.inputs[0] and op.outputs == model.outputs
    assert model.shape_signature(model.inputs[0]) == [-1, 6]
    assert model.shape(model.inputs[0]) == [1, 6]
    assert model.dtype(model.inputs[0]) == "float32"
    assert model.quantization(model.inputs[0]) is None
    assert not model.is_constant(model.inputs[0]) and model.values(model.inputs[0]) is None
    weights = op.inputs[1]
    assert model.is_constant(weights)
    # TFLite stores FULLY_CONNECTED weights as [out, in]: the Keras kernel transposed.
    np.testing.assert_array_equal(model.values(weights), kernel.T)
    assert model.readers(weights) == ["FULLY_CONNECTED:1"]
    assert sorted(t for t, _ in model.constants()) == sorted(op.inputs[1:])
    assert [t for t, _ in model.weights_of({"FULLY_CONNECTED": 1})] == [weights]


def test_float16_weights_are_found_through_dequantize(files):
    paths, kernel = files
    model = TFLiteFlatbuffer(paths["float16"])
    fully_connected = next(op for op in model.ops if op.name == "FULLY_CONNECTED")
    assert not model.is_constant(fully_connected.inputs[1])  # a DEQUANTIZE output
    stored = model.stored_source(fully_connected.inputs[1])
    assert model.dtype(stored) == "float16"
    np.testing.assert_array_equal(model.values(stored), kernel.T.astype("float16"))
    assert [t for t, _ in model.weights_of({"FULLY_CONNECTED": 1})] == [stored]


def test_int8_quantization_parameters(files):
    paths, _ = files
    model = TFLiteFlatbuffer(paths["int8"])
    fully_connected = next(op for op in model.ops if op.name == "FULLY_CONNECTED")
    weights = fully_connected.inputs[1]
    assert model.dtype(weights) == "int8"
    quantization = model.quantization(weights)
    assert len(quantization["scale"]) == len(quantization["zero_point"]) >= 1
    assert all(scale > 0 for scale in quantization["scale"])
    activation = model.quantization(fully_connected.inputs[0])
    assert len(activation["scale"]) == 1 and activation["axis"] is None
    assert model.dtype(fully_connected.inputs[2]) == "int32"


def test_bytes_and_bad_inputs(files, tmp_path):
    paths, _ = files
    with open(paths["float32"], "rb") as handle:
        data = handle.read()
    label, read = read_tflite(data)
    assert (label, read) == ("<bytes>", data)
    assert [op.name for op in TFLiteFlatbuffer(bytearray(data)).ops] == ["FULLY_CONNECTED"]
    with pytest.raises(ValueError, match=r"existing '.tflite' file. Received: tflite_path=.*absent.tflite"):
        read_tflite(tmp_path / "absent.tflite")
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(data)
    with pytest.raises(ValueError, match=r"Received: tflite_path=.*model.bin"):
        read_tflite(renamed)
    with pytest.raises(ValueError, match=r"no 'TFL3' identifier\). Received: path=<5 bytes>"):
        read_tflite(b"hello", arg_name="path")
    with pytest.raises(ValueError, match="Received: tflite_path of type int"):
        read_tflite(42)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"corrupt TFLite flatbuffer .*truncated.tflite"):
        TFLiteFlatbuffer(truncated)


def test_another_subgraph_is_read_by_number_and_a_missing_one_is_refused(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.SimpleRNN(4), keras.layers.Dense(2)])
    with pytest.warns(UserWarning, match="batch_size=1"):
        path = tflite_export.convert(model, str(tmp_path / "rnn.tflite"))
    main = TFLiteFlatbuffer(path)
    assert "WHILE" in [op.name for op in main.ops] and main.subgraph_count == 3
    bodies = [TFLiteFlatbuffer(path, subgraph=index) for index in (1, 2)]
    assert ["FULLY_CONNECTED" in [op.name for op in body.ops] for body in bodies].count(True) == 1
    with pytest.raises(ValueError, match=r"has 3 subgraph\(s\), numbered from 0. Received: subgraph=3"):
        TFLiteFlatbuffer(path, subgraph=3)
