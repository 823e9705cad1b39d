"""int8_grid_weights: float32 kernels on an int8 grid stored as int8 + DEQUANTIZE, the arithmetic kept."""

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export.flatbuffer import TFLiteFlatbuffer
from tflite_export.grid_weights import grid_scale
from tflite_export.grid_weights import int8_grid_weights

L = keras.layers


def _ops_and_kernels(data):
    """The main subgraph's op names, and the stored dtype of each FULLY_CONNECTED weight (through a DEQUANTIZE)."""
    file = TFLiteFlatbuffer(data)
    ops = [op.name for op in file.ops]
    return ops, [file.dtype(file.stored_source(op.inputs[1])) for op in file.ops if op.name == "FULLY_CONNECTED"]


@pytest.mark.parametrize("size", [300, 262_144])
def test_grid_scale_finds_the_scale_of_values_on_an_int8_grid(size):
    rng = np.random.default_rng(0)
    scale = np.float32(0.00113)
    levels = np.clip(np.rint(rng.normal(scale=40, size=size)), -127, 127)
    levels[:2] = [127, -3]
    values = levels.astype(np.float32) * scale
    found = grid_scale(values)
    assert found is not None and abs(float(found) - float(scale)) < 1e-9
    # What DEQUANTIZE computes gives the values back to within 4 units in the last place of the largest.
    back = np.rint(values / found).astype(np.int8).astype(np.float32) * found
    assert np.abs(back - values).max() <= 4 * np.spacing(np.float32(127 * scale))


def test_grid_scale_refuses_values_off_any_int8_grid():
    rng = np.random.default_rng(1)
    assert grid_scale(rng.normal(size=1000).astype(np.float32)) is None  # no grid at all
    assert grid_scale(np.arange(255, dtype=np.float32) * 0.01) is None  # 255 levels from 0: uint8, not int8
    assert grid_scale(np.zeros(512, np.float32)) is None
    off = np.arange(-127, 128, dtype=np.float32) * 0.01
    off[5] += 0.003  # one value between grid points
    assert grid_scale(off) is None


def _grid_model():
    """A float model whose Dense kernel holds int8-grid values and whose LayerNorm gamma is all ones."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    x = L.LayerNormalization(name="norm")(L.Dense(256, name="grid")(inputs))
    model = keras.Model(inputs, L.Dense(10, name="plain")(x))
    kernel, bias = model.get_layer("grid").get_weights()
    scale = np.abs(kernel).max() / 127
    model.get_layer("grid").set_weights([(np.rint(kernel / scale) * scale).astype(np.float32), bias])
    return model


def test_only_kernels_on_a_grid_are_rewritten_and_the_outputs_stay_identical(tmp_path):
    model = _grid_model()
    path = tflite_export.convert(model, str(tmp_path / "float.tflite"))
    with open(path, "rb") as handle:
        data = handle.read()
    rewritten, names = int8_grid_weights(data)
    # The grid kernel, not the plain Dense's (random floats) nor LayerNorm's gamma of ones.
    assert len(names) == 1 and "grid" in names[0], names
    ops, stored = _ops_and_kernels(rewritten)
    assert ops.count("DEQUANTIZE") == 1 and sorted(stored) == ["float32", "int8"]
    assert len(rewritten) < len(data) - 3 * 64 * 256 * 0.9
    out = tmp_path / "grid.tflite"
    out.write_bytes(rewritten)
    x = np.random.default_rng(2).normal(size=(16, 64)).astype("float32")
    np.testing.assert_array_equal(tflite_export.predict(str(out), x), tflite_export.predict(path, x))


def test_a_file_without_grid_kernels_comes_back_unchanged(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), L.Dense(256), L.Dense(10)])
    path = tflite_export.convert(model, str(tmp_path / "float.tflite"))
    with open(path, "rb") as handle:
        data = handle.read()
    assert int8_grid_weights(data) == (data, [])


def test_convert_checks_grid_weights_int8(tmp_path):
    model = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    with pytest.raises(ValueError, match="grid_weights_int8 must be True or False. Received: grid_weights_int8=1"):
        tflite_export.convert(model, str(tmp_path / "m.tflite"), grid_weights_int8=1)


def test_a_kernel_stored_sparse_is_left_alone(tmp_path):
    model = _grid_model()
    kernel, bias = model.get_layer("grid").get_weights()
    kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.9)] = 0.0  # pruned: the converter stores it sparse
    model.get_layer("grid").set_weights([kernel, bias])
    path = tflite_export.convert(model, str(tmp_path / "sparse.tflite"), sparse_weights=True)
    with open(path, "rb") as handle:
        data = handle.read()
    assert "DENSIFY" in _ops_and_kernels(data)[0]
    rewritten, names = int8_grid_weights(data)
    assert not any("grid" in name for name in names), names
    out = tmp_path / "after.tflite"
    out.write_bytes(rewritten)
    x = np.random.default_rng(3).normal(size=(8, 64)).astype("float32")
    np.testing.assert_array_equal(tflite_export.predict(str(out), x), tflite_export.predict(path, x))
