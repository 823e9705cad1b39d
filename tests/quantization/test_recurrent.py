"""QAT of LSTM and GRU: kernels on the int8 grid, converted with the loop TFLite lowers."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import QuantizeWrapper
from kopt.quantization import quantize_model

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
