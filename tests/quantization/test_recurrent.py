"""QAT of LSTM and GRU: kernels on the int8 grid, converted with the loop TFLite lowers."""

import os

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import QuantizeWrapper
from kopt.quantization import quantize_model
from tflite_export.flatbuffer import TFLiteFlatbuffer

L = keras.layers


@pytest.mark.parametrize("layer_class", [L.LSTM, L.GRU])
def test_recurrent_qat_trains_converts_and_agrees(layer_class, tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 10, 6)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("int64")  # the sign of a running sum
    inputs = keras.Input((10, 6))
    model = keras.Model(inputs, L.Dense(2)(layer_class(16, name="rnn")(inputs)))
    qat = quantize_model(model)
    wrapper = next(layer for layer in qat.layers if isinstance(layer, QuantizeWrapper) and layer.layer.name == "rnn")
    qat.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    qat.fit(x, y, epochs=4, verbose=0)
    assert qat.evaluate(x, y, verbose=0)[1] > 0.8

    # Both kernels take at most 255 values: they were trained on the int8 grid.
    kernel, recurrent_kernel = wrapper.quantized_weights()[:2]
    assert len(np.unique(kernel)) <= 255 and len(np.unique(recurrent_kernel)) <= 255

    with pytest.warns(UserWarning, match="batch_size=1"):
        path = tflite_export.convert(qat, str(tmp_path / "rnn.tflite"), mode="int8")
    result = tflite_export.verify(path, qat, (x[:128], y[:128]))
    assert result["agreement"] >= 0.99, result

    # The loop's kernels are stored as int8 (the default) and compute exactly what float32 kernels compute.
    with pytest.warns(UserWarning, match="batch_size=1"):
        float_kernels = tflite_export.convert(
            qat, str(tmp_path / "float_kernels.tflite"), mode="int8", grid_weights_int8=False
        )
    assert _loop_kernel_types(path) == ["int8", "int8"] and _loop_kernel_types(float_kernels) == ["float32"] * 2
    np.testing.assert_array_equal(tflite_export.predict(path, x[:64]), tflite_export.predict(float_kernels, x[:64]))
    saved = 3 * len(np.asarray(kernel).ravel()) + 3 * len(np.asarray(recurrent_kernel).ravel())
    assert os.path.getsize(float_kernels) - os.path.getsize(path) >= 0.75 * saved  # less each tensor's name and op


def _loop_kernel_types(path):
    """The stored dtype of each FULLY_CONNECTED weight in the loop bodies (through a DEQUANTIZE)."""
    found = []
    for subgraph in range(1, TFLiteFlatbuffer(path).subgraph_count):
        body = TFLiteFlatbuffer(path, subgraph=subgraph)
        found += [body.dtype(body.stored_source(op.inputs[1])) for op in body.ops if op.name == "FULLY_CONNECTED"]
    return found


def test_bidirectional_qat_quantizes_both_directions_and_survives_save_and_convert(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 8, 5)).astype("float32")
    inputs = keras.Input((8, 5))
    sequence = L.Bidirectional(L.LSTM(12, return_sequences=True), name="both")(inputs)
    summed = L.Bidirectional(L.GRU(8), merge_mode="sum", name="summed")(sequence)
    qat = quantize_model(keras.Model(inputs, L.Dense(3)(summed)))
    qat.compile(keras.optimizers.Adam(1e-3), "mse")
    qat.fit(x, np.zeros((64, 3), "float32"), epochs=1, verbose=0)
    wrapper = next(layer for layer in qat.layers if isinstance(layer, QuantizeWrapper) and layer.layer.name == "both")
    # Four kernels on the int8 grid, each with ranges of its own name, and one range for the merged output.
    names = [v.path.split("/")[-1] for v in wrapper.weights if v.path.endswith("_min")]
    assert len(set(names)) == 5 and names[-1] == "output_0_min"
    directions = [name.split("_")[0] for name in names[:4]]
    assert directions == ["forward", "forward", "backward", "backward"], names
    assert [name.endswith("_recurrent_kernel_min") for name in names[:4]] == [False, True, False, True], names
    quantized = [array for array in wrapper.quantized_weights() if array.ndim == 2]  # an LSTM: kernels only
    assert len(quantized) == 4 and all(len(np.unique(array)) <= 255 for array in quantized)
    path = str(tmp_path / "both.keras")
    qat.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), qat.predict(x, verbose=0))
    with pytest.warns(UserWarning, match="batch_size=1"):
        file = tflite_export.convert(loaded, str(tmp_path / "both.tflite"), mode="int8")
    assert tflite_export.verify(file, loaded, (x, np.zeros(64)))["agreement"] == 1.0
