"""tflite_export.inspect / is_fully_integer / format_inspection on real converted files."""

import json
import os
import re

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export import file_sizes
from tflite_export import format_inspection
from tflite_export import inspect
from tflite_export import is_fully_integer

RNG = np.random.default_rng(0)
WEIGHT_OPS = ("CONV_2D", "FULLY_CONNECTED")


def _model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    # 288 x 8 = 2,304 weights: above the 1,024 below which dynamic mode keeps float.
    model = keras.Model(inputs, keras.layers.Dense(8, name="fc")(x), name="inspected")
    for layer in model.layers:
        # Values away from 0 (and distinct biases, which the converter would merge
        # if equal), so the only zeros are the ones the test makes.
        layer.set_weights(
            [
                (RNG.uniform(0.5, 1.5, w.shape) * RNG.choice([-1, 1], w.shape)).astype("float32")
                for w in layer.get_weights()
            ]
        )
    kernel, bias = model.get_layer("fc").get_weights()
    zeroed = RNG.permutation(kernel.size)[: kernel.size // 2]
    kernel.reshape(-1)[zeroed] = 0.0
    model.get_layer("fc").set_weights([kernel, bias])
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _model()
    directory = tmp_path_factory.mktemp("inspect")
    calibration = RNG.uniform(0, 1, (32, 8, 8, 3)).astype("float32")
    paths = {}
    for mode in ("float32", "float16", "dynamic", "int8", "int16x8"):
        paths[mode] = tflite_export.convert(
            model,
            os.path.join(directory, f"{mode}.tflite"),
            mode=mode,
            representative_dataset=calibration if mode in ("int8", "int16x8") else None,
        )
    paths["int8_io"] = tflite_export.convert(
        model,
        os.path.join(directory, "int8_io.tflite"),
        mode="int8",
        representative_dataset=calibration,
        inference_input_type="int8",
        inference_output_type="int8",
    )
    return model, paths


def _op(report, name):
    (op,) = [op for op in report["ops"] if op["op"] == name]
    return op


def _fc_weights(report):
    (entry,) = [t for t in report["tensors"] if "FULLY_CONNECTED:1" in t["readers"]]
    return entry


def test_float32_file(exported):
    model, paths = exported
    report = inspect(paths["float32"])
    json.dumps(report)  # JSON-ready
    assert report["source"] == paths["float32"]
    assert [op["index"] for op in report["ops"]] == list(range(len(report["ops"])))
    assert {"CONV_2D", "FULLY_CONNECTED", "RESHAPE"} <= set(report["op_counts"])
    assert sum(report["op_counts"].values()) == len(report["ops"])
    assert report["flex_ops"] == [] and report["custom_ops"] == []
    (model_input,) = report["inputs"]
    assert model_input["dtype"] == "float32" and model_input["quantization"] is None
    assert model_input["shape_signature"] == [-1, 8, 8, 3]
    conv = _op(report, "CONV_2D")
    assert [t["dtype"] for t in conv["inputs"]] == ["float32"] * 3
    assert conv["inputs"][1]["shape"] == [8, 3, 3, 3] and conv["inputs"][1]["constant"]
    assert conv["outputs"][0]["shape_signature"] == [-1, 6, 6, 8]
    assert report["parameters"] == model.count_params()
    assert _fc_weights(report)["sparsity"] == 0.5
    assert _fc_weights(report)["zeros"] == 288 * 8 // 2
    (conv_kernel,) = [t for t in report["tensors"] if "CONV_2D:1" in t["readers"]]
    assert conv_kernel["sparsity"] == 0.0 and conv_kernel["parameter"]
    # The Flatten's int32 shape constants are tensors, but not parameters.
    shape_constants = [t for t in report["tensors"] if t["dtype"] == "int32"]
    assert shape_constants and not any(t["parameter"] for t in shape_constants)
    assert report["size"] == file_sizes(paths["float32"])
    assert report["m_by_n"] is None
    ok, reasons = is_fully_integer(report)
    assert not ok
    weights = conv["inputs"][1]["name"]
    assert f"op {conv['index']} CONV_2D: input 1 {weights!r} is float32, expected int8 weights" in reasons


def test_int8_file_is_fully_integer(exported):
    model, paths = exported
    report = inspect(paths["int8"])
    assert report["ops"][0]["op"] == "QUANTIZE" and report["ops"][-1]["op"] == "DEQUANTIZE"
    for name in WEIGHT_OPS:
        op = _op(report, name)
        assert [t["dtype"] for t in op["inputs"]] == ["int8", "int8", "int32"]
        assert op["outputs"][0]["dtype"] == "int8"
        assert op["inputs"][0]["quantization"]["axis"] is None
    conv_weights = _op(report, "CONV_2D")["inputs"][1]["quantization"]
    assert len(conv_weights["scale"]) == 8 and conv_weights["axis"] == 0  # per output channel
    assert conv_weights["zero_point"] == [0] * 8
    assert report["parameters"] == model.count_params()
    assert _fc_weights(report)["dtype"] == "int8"
    assert _fc_weights(report)["sparsity"] == 0.5  # symmetric weights: 0.0 stays 0
    assert is_fully_integer(report) == (True, [])
    assert is_fully_integer(paths["int8"]) == (True, [])  # a path is inspected first


def test_int8_io_and_int16x8_files(exported):
    _, paths = exported
    report = inspect(paths["int8_io"])
    (model_input,) = report["inputs"]
    assert model_input["dtype"] == "int8" and len(model_input["quantization"]["scale"]) == 1
    assert report["outputs"][0]["dtype"] == "int8"
    assert "QUANTIZE" not in report["op_counts"]
    assert is_fully_integer(report) == (True, [])
    report = inspect(paths["int16x8"])
    for name in WEIGHT_OPS:
        op = _op(report, name)
        assert op["inputs"][0]["dtype"] == "int16" and op["inputs"][1]["dtype"] == "int8"
        assert op["outputs"][0]["dtype"] == "int16"
    assert is_fully_integer(report) == (True, [])


def test_dynamic_file_has_int8_weights_and_float_activations(exported):
    model, paths = exported
    report = inspect(paths["dynamic"])
    fully_connected = _op(report, "FULLY_CONNECTED")
    assert fully_connected["inputs"][0]["dtype"] == "float32"
    assert fully_connected["inputs"][1]["dtype"] == "int8"
    assert _fc_weights(report)["sparsity"] == 0.5
    assert report["parameters"] == model.count_params()
    ok, reasons = is_fully_integer(report)
    assert not ok
    index = fully_connected["index"]
    assert any(r.startswith(f"op {index} FULLY_CONNECTED: input 0 ") and "float32" in r for r in reasons)


def test_float16_file_counts_weights_behind_dequantize(exported):
    model, paths = exported
    report = inspect(paths["float16"])
    assert report["op_counts"]["DEQUANTIZE"] >= 4
    assert report["parameters"] == model.count_params()
    assert {t["dtype"] for t in report["tensors"] if t["parameter"]} == {"float16"}
    ok, reasons = is_fully_integer(report)
    conv = _op(report, "CONV_2D")
    producer = next(op for op in report["ops"] if op["outputs"][0]["tensor"] == conv["inputs"][1]["tensor"])
    expected = (
        f"op {conv['index']} CONV_2D: input 1 {conv['inputs'][1]['name']!r} comes from DEQUANTIZE op "
        f"{producer['index']}, so this op computes in float"
    )
    assert not ok and expected in reasons


def test_bytes_give_the_same_report(exported):
    _, paths = exported
    with open(paths["int8"], "rb") as handle:
        from_bytes = inspect(handle.read())
    from_path = inspect(paths["int8"])
    assert from_bytes["source"] == "<bytes>"
    assert {**from_bytes, "source": None} == {**from_path, "source": None}


def test_m_by_n(tmp_path):
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="d")(inputs))
    kernel = np.ones((8, 3), "float32")
    kernel[[0, 1, 4, 5]] = 0  # two zeros in each block of four inputs
    model.get_layer("d").set_weights([kernel, np.ones(3, "float32")])
    path = tflite_export.convert(model, os.path.join(tmp_path, "sparse.tflite"))
    report = inspect(path, m_by_n=(2, 4))
    assert report["m_by_n"]["ok"] and len(report["m_by_n"]["tensors"]) == 1
    assert not inspect(path, m_by_n=(3, 4))["m_by_n"]["ok"]
    assert "2:4 sparsity (1 weight tensors): ok" in format_inspection(report)
    for bad in ((4, 4), (2,), (2.0, 4), "2:4"):
        with pytest.raises(ValueError, match=re.escape(f"Received: m_by_n={bad!r}")):
            inspect(path, m_by_n=bad)


def test_format_inspection(exported):
    _, paths = exported
    text = format_inspection(inspect(paths["int8"]))
    lines = text.splitlines()
    assert lines[0].startswith(f"TFLite model {paths['int8']}: ")
    conv_row = r"^\d+\s+CONV_2D\s+int8\[\?x8x8x3\] int8\[8x3x3x3\]\* int32\[8\]\*\s+int8\[\?x6x6x8\]$"
    assert re.search(conv_row, text, re.M)
    assert "50.0%" in text  # the half-zeroed Dense kernel
    assert "flex ops: none; custom ops: none" in text


def test_is_fully_integer_rules_on_a_hand_made_report():
    def tensor(index, name, dtype, quantized=True):
        quantization = {"scale": [0.1], "zero_point": [0], "axis": None} if quantized else None
        return {"tensor": index, "name": name, "dtype": dtype, "quantization": quantization}

    def op(index, name, inputs, outputs, kind="builtin"):
        return {"index": index, "op": name, "kind": kind, "inputs": inputs, "outputs": outputs}

    x_float, x, w8 = tensor(0, "x_float", "float32", False), tensor(1, "x", "int8"), tensor(2, "w8", "int8")
    w, y, z = tensor(3, "w", "float32", False), tensor(4, "y", "int8"), tensor(5, "z", "int16")
    report = {
        "ops": [
            op(0, "QUANTIZE", [x_float], [x]),  # float model input: allowed
            op(1, "DEQUANTIZE", [w8], [w]),
            op(2, "FULLY_CONNECTED", [x, w, None], [y]),
            op(3, "FlexErf", [y], [z], kind="flex"),
            op(4, "CONV_2D", [z, tensor(6, "k", "int8"), tensor(7, "b", "int8")], [tensor(8, "c", "int8")]),
            op(5, "SOFTMAX", [tensor(9, "s", "float32", False)], [tensor(10, "t", "int8")]),
            op(6, "DEQUANTIZE", [tensor(8, "c", "int8")], [tensor(11, "out", "float32", False)]),  # model output
        ]
    }
    ok, reasons = is_fully_integer(report)
    assert not ok
    assert reasons == [
        "op 2 FULLY_CONNECTED: input 1 'w' comes from DEQUANTIZE op 1, so this op computes in float",
        "op 2 FULLY_CONNECTED: input 1 'w' is float32, expected int8 weights",
        "op 3 FlexErf: flex op; integer-only runtimes have no kernel for it",
        "op 4 CONV_2D: output 0 'c' is int8 but input 0 is int16",
        "op 4 CONV_2D: input 2 'b' is int8, expected an int32 or int64 bias",
        "op 5 SOFTMAX: input 0 's' is float32",
    ]
    with pytest.raises(ValueError, match=r"Received: report=<dict with keys \['op_counts'\]>"):
        is_fully_integer({"op_counts": {}})


def test_the_unsigned_format_is_integer_with_unsigned_weights_only():
    """TFLite's legacy uint8 files: uint8 activations need uint8 weights, and int8 weights do not pass."""

    def tensor(index, name, dtype):
        return {"tensor": index, "name": name, "dtype": dtype, "quantization": {"scale": [0.1], "zero_point": [128]}}

    def conv(weights):
        inputs = [tensor(0, "x", "uint8"), tensor(1, "w", weights), tensor(2, "b", "int32")]
        return {"ops": [{"index": 0, "op": "CONV_2D", "kind": "builtin", "inputs": inputs,
                         "outputs": [tensor(3, "y", "uint8")]}]}  # fmt: skip

    assert is_fully_integer(conv("uint8")) == (True, [])
    assert is_fully_integer(conv("int8")) == (False, ["op 0 CONV_2D: input 1 'w' is int8, expected uint8 weights"])


def test_unreadable_files_are_refused_with_their_path(tmp_path):
    # One small float file of its own: the module's fixture converts six, and pytest-xdist may run this
    # test on the other worker, which would convert all six again for it.
    missing = os.path.join(tmp_path, "missing.tflite")
    with pytest.raises(ValueError, match=re.escape(f"Received: tflite_path={missing!r}")):
        inspect(missing)
    wrong_suffix = tmp_path / "model.tfl"
    wrong_suffix.write_bytes(b"junk" * 100)
    with pytest.raises(ValueError, match=re.escape(f"Received: tflite_path={str(wrong_suffix)!r}")):
        inspect(wrong_suffix)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"junk" * 100)
    with pytest.raises(ValueError, match=r"not a TFLite flatbuffer .*junk.tflite"):
        inspect(junk)
    truncated = tmp_path / "truncated.tflite"
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    truncated.write_bytes(open(tflite_export.convert(model, str(tmp_path / "small.tflite")), "rb").read()[:200])
    with pytest.raises(ValueError, match=r"corrupt TFLite flatbuffer .*truncated.tflite"):
        inspect(truncated)
