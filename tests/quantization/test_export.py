"""QAT to TFLite end to end: integer-only files that compute what the Keras model computes."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import quantize_model
from kopt.quantization.fake_quant import nudged_range
from tflite_export.verify import load_interpreter

L = keras.layers
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
AGREEMENT = 0.995


def _mnist_arrays(path):
    data = np.load(path)
    x_train = (data["x_train"][:6000, ..., None] / 255.0).astype("float32")
    x_test = (data["x_test"][:2000, ..., None] / 255.0).astype("float32")
    return x_train, data["y_train"][:6000].astype("int64"), x_test, data["y_test"][:2000].astype("int64")


def _small_cnn():
    inputs = keras.Input((28, 28, 1), name="image")
    x = L.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = L.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = L.Flatten()(x)
    return keras.Model(inputs, L.Dense(10)(x), name="small_cnn")


def _mixed_model():
    """Dense, Conv2D, DepthwiseConv2D, BatchNormalization, Add, ReLU6 and three poolings."""
    inputs = keras.Input((28, 28, 1), name="image")
    x = L.Conv2D(16, 3, strides=2, use_bias=False)(inputs)
    x = L.BatchNormalization(momentum=0.9)(x)
    x = L.ReLU()(x)
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = L.BatchNormalization(momentum=0.9)(y)
    x = L.ReLU(6.0)(L.Add()([x, y]))
    x = L.AveragePooling2D(2)(x)
    x = L.Conv2D(32, 3, strides=2, activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Flatten()(x)
    return keras.Model(inputs, L.Dense(10)(x), name="mixed")


def _qat(make_model, arrays, *, learning_rate):
    """Float training for one epoch, then a short quantization-aware fine-tune."""
    x_train, y_train, _, _ = arrays
    keras.utils.set_random_seed(0)
    model = make_model()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(learning_rate), loss)
    model.fit(x_train, y_train, batch_size=32, epochs=1, verbose=0)
    qat = quantize_model(model)
    qat.compile(keras.optimizers.Adam(1e-4), loss, metrics=["accuracy"])
    qat.fit(x_train[:2000], y_train[:2000], batch_size=32, epochs=1, verbose=0)
    return qat


@pytest.fixture(scope="module")
def arrays(mnist_npz):
    return _mnist_arrays(mnist_npz)


def _check_integer_file(path, *, activation_type="int8", weight_type="int8", dense_per_channel=False):
    report = tflite_export.inspect(path)
    ok, reasons = tflite_export.is_fully_integer(report)
    assert ok, reasons
    assert report["flex_ops"] == [] and report["custom_ops"] == []
    weight_ops = [op for op in report["ops"] if op["op"] in WEIGHT_OPS]
    assert weight_ops
    for op in weight_ops:
        weights, bias = op["inputs"][1], op["inputs"][2]
        assert weights["dtype"] == weight_type and weights["constant"], op
        assert bias is None or bias["dtype"] in ("int32", "int64"), op
        assert op["inputs"][0]["dtype"] == activation_type and op["outputs"][0]["dtype"] == activation_type, op
        channels = weights["shape"][-1] if op["op"] == "DEPTHWISE_CONV_2D" else weights["shape"][0]
        # Per-channel scales for convolutions, one scale for Dense, as TFLite's kernels expect.
        expected_scales = 1 if op["op"] == "FULLY_CONNECTED" and not dense_per_channel else channels
        assert len(weights["quantization"]["scale"]) == expected_scales, op["op"]
    return report


def _agreement(path, qat, x_test, y_test):
    result = tflite_export.verify(path, qat, [(x_test, y_test)])
    assert result["examples"] >= 1000
    return result


@pytest.mark.parametrize("io_type", ["float32", "int8"])
def test_small_cnn_converts_to_an_integer_file_that_agrees(tmp_path, arrays, small_cnn_qat, io_type):
    qat = small_cnn_qat
    _, _, x_test, y_test = arrays
    path = tflite_export.convert(
        qat, str(tmp_path / "cnn.tflite"), mode="int8", inference_input_type=io_type, inference_output_type=io_type
    )
    report = _check_integer_file(path)
    assert [t["dtype"] for t in report["inputs"]] == [io_type]
    assert [t["dtype"] for t in report["outputs"]] == [io_type]
    result = _agreement(path, qat, x_test, y_test)
    assert result["agreement"] >= AGREEMENT, result
    assert result["keras_accuracy"] > 0.8, result  # trained, so agreement means something
    if io_type == "int8":
        # The input scale is the QuantizeLayer's trained range, not a calibration.
        low, high = (float(keras.ops.convert_to_numpy(w)) for w in qat.get_layer("quantize_image").weights)
        _, _, scale = nudged_range(low, high)
        np.testing.assert_allclose(report["inputs"][0]["quantization"]["scale"], [float(scale)], rtol=1e-5)


@pytest.fixture(scope="module")
def small_cnn_qat(arrays):
    return _qat(_small_cnn, arrays, learning_rate=1e-3)


def test_model_with_batch_norm_add_depthwise_and_pooling_agrees(tmp_path, arrays):
    _, _, x_test, y_test = arrays
    qat = _qat(_mixed_model, arrays, learning_rate=3e-3)
    path = tflite_export.convert(qat, str(tmp_path / "mixed.tflite"), mode="int8")
    report = _check_integer_file(path)
    counts = report["op_counts"]
    assert counts["CONV_2D"] == 2 and counts["DEPTHWISE_CONV_2D"] == 1 and counts["FULLY_CONNECTED"] == 1
    assert counts["ADD"] == 1 and counts["AVERAGE_POOL_2D"] == 1 and counts["MAX_POOL_2D"] == 1
    assert "MUL" not in counts  # BatchNormalization folded, not run as its own op
    result = _agreement(path, qat, x_test, y_test)
    assert result["agreement"] >= AGREEMENT, result
    assert result["keras_accuracy"] > 0.8, result


def _random_conv_model():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 2))
    x = L.Conv2D(8, 3, activation="relu")(inputs)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(4)(x))


def _short_fit(qat, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((64, 8, 8, 2)).astype("float32")
    qat.compile(keras.optimizers.Adam(1e-3), "mse")
    qat.fit(x, rng.normal(size=(64, 4)).astype("float32"), batch_size=16, verbose=0)
    return x


def test_four_bit_scheme_file_uses_at_most_16_values_per_output_channel(tmp_path):
    qat = quantize_model(_random_conv_model(), scheme="4bit")
    x = _short_fit(qat)
    path = tflite_export.convert(qat, str(tmp_path / "four_bit.tflite"), mode="int8")
    # The converter stores 4-bit grids as packed int4, which LiteRT's kernels unpack.
    report = _check_integer_file(path, weight_type="int4")
    interpreter = load_interpreter(path)
    interpreter.allocate_tensors()
    checked = 0
    for op in report["ops"]:
        if op["op"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        values = interpreter.get_tensor(op["inputs"][1]["tensor"])
        axis = 3 if op["op"] == "DEPTHWISE_CONV_2D" else 0
        per_channel = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
        counts = [len(np.unique(channel)) for channel in per_channel]
        assert max(counts) <= 16, (op["op"], counts)
        checked += 1
    assert checked == 2
    outputs = tflite_export.predict(path, x)
    np.testing.assert_allclose(outputs, qat.predict(x, verbose=0), atol=0.05)


def test_16x8_scheme_file_has_int16_activations(tmp_path):
    qat = quantize_model(_random_conv_model(), scheme="16x8")
    x = _short_fit(qat)
    path = tflite_export.convert(qat, str(tmp_path / "16x8.tflite"), mode="int16x8", representative_dataset=x)
    # Calibrated from the stripped model: the converter picks per-channel Dense scales.
    _check_integer_file(path, activation_type="int16", dense_per_channel=True)
    outputs = tflite_export.predict(path, x)
    np.testing.assert_allclose(outputs, qat.predict(x, verbose=0), atol=0.02)


def test_fixed_output_grids_of_sigmoid_tanh_and_softmax_match_tflite(tmp_path):
    keras.utils.set_random_seed(2)
    inputs = keras.Input((6,))
    x = L.Dense(8, activation="tanh")(inputs)
    x = L.Dense(8, activation="sigmoid")(x)
    x = L.Softmax()(L.Dense(5)(x))
    qat = quantize_model(keras.Model(inputs, x))
    rng = np.random.default_rng(2)
    data = rng.normal(scale=2.0, size=(256, 6)).astype("float32")
    qat.compile("adam", "mse")
    qat.fit(data, rng.random((256, 5)).astype("float32"), batch_size=32, verbose=0)
    path = tflite_export.convert(qat, str(tmp_path / "fixed.tflite"), mode="int8")
    report = _check_integer_file(path)
    assert {"TANH", "LOGISTIC", "SOFTMAX"} <= set(report["op_counts"])
    for op in report["ops"]:
        if op["op"] in ("LOGISTIC", "SOFTMAX"):
            assert op["outputs"][0]["quantization"]["scale"] == [pytest.approx(1 / 256)]
            assert op["outputs"][0]["quantization"]["zero_point"] == [-128]
        if op["op"] == "TANH":
            assert op["outputs"][0]["quantization"]["scale"] == [pytest.approx(1 / 128)]
    # Softmax outputs on the 1/256 grid: the file and the Keras model differ by at most a step.
    np.testing.assert_allclose(tflite_export.predict(path, data), qat.predict(data, verbose=0), atol=1 / 256 + 1e-6)


def test_a_qat_model_needs_an_integer_mode(tmp_path):
    qat = quantize_model(_random_conv_model())
    with pytest.raises(ValueError, match="quantization-aware"):
        tflite_export.convert(qat, str(tmp_path / "float.tflite"), mode="float32")
