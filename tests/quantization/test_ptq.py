"""Post-training quantization helpers: each mode's dtypes, I/O types and accuracy."""

import re

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import ptq


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(600, 8, 8, 1)).astype("float32")
    labels = (images[:, :4].mean(axis=(1, 2, 3)) > images[:, 4:].mean(axis=(1, 2, 3))).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(2),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, epochs=8, verbose=0)
    return model, images, labels


def _weight_dtypes(path):
    report = tflite_export.inspect(path)
    return {t["dtype"] for t in report["tensors"] if t["parameter"] and len(t["shape"]) > 1}


def test_dynamic_range_stores_int8_weights_and_float_io(trained, tmp_path):
    model, images, _ = trained
    path = ptq.quantize_dynamic_range(model, tmp_path / "d.tflite")
    report = tflite_export.inspect(path)
    assert report["inputs"][0]["dtype"] == "float32"
    assert "int8" in _weight_dtypes(path)
    agreement = tflite_export.verify(path, model, (images, np.zeros(len(images), "int32")))["agreement"]
    assert agreement >= 0.98


def test_float16_stores_float16_weights(trained, tmp_path):
    model, images, _ = trained
    path = ptq.quantize_float16(model, tmp_path / "h.tflite")
    assert _weight_dtypes(path) == {"float16"}
    outputs = tflite_export.predict(path, images[:50])
    np.testing.assert_allclose(outputs, model.predict(images[:50], verbose=0), atol=0.05)


@pytest.mark.parametrize("io_type", ["int8", "uint8", "float32"])
def test_full_integer_is_fully_integer_with_chosen_io(trained, tmp_path, io_type):
    model, images, labels = trained
    path = ptq.quantize_full_integer(model, tmp_path / "i.tflite", images[:200], input_type=io_type, output_type=io_type)
    report = tflite_export.inspect(path)
    integer, reasons = tflite_export.is_fully_integer(report)
    assert integer, reasons
    assert report["inputs"][0]["dtype"] == io_type and report["outputs"][0]["dtype"] == io_type
    checked = tflite_export.verify(path, model, (images, labels))
    assert checked["agreement"] >= 0.97
    assert abs(checked["tflite_accuracy"] - checked["keras_accuracy"]) <= 0.03


def test_int16x8_has_int16_activations(trained, tmp_path):
    model, images, _ = trained
    path = ptq.quantize_int16x8(model, tmp_path / "s.tflite", images[:100])
    report = tflite_export.inspect(path)
    conv = next(op for op in report["ops"] if op["op"] == "CONV_2D")
    assert conv["inputs"][0]["dtype"] == "int16" and conv["inputs"][1]["dtype"] == "int8"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, p: ptq.quantize_full_integer(m, p, None), "representative_dataset=None"),
        (lambda m, p: ptq.quantize_full_integer(m, p, np.zeros((1, 8, 8, 1)), input_type="int16"), "input_type='int16'"),
        (lambda m, p: ptq.quantize_full_integer(m, p, np.zeros((1, 8, 8, 1)), output_type="f"), "output_type='f'"),
        (lambda m, p: ptq.quantize_int16x8(m, p, None), "representative_dataset=None"),
    ],
)
def test_bad_arguments_fail_before_writing(trained, tmp_path, call, message):
    path = tmp_path / "x.tflite"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(trained[0], path)
    assert not path.exists()


def test_calibrate_sets_the_widest_ranges_and_changes_nothing_else():
    import keras
    import numpy as np

    from kopt.quantization import QuantizeLayer
    from kopt.quantization import calibrate
    from kopt.quantization import quantize_model

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dropout(0.5)(keras.layers.Dense(3)(inputs))))
    qat = quantize_model(model)
    weights = [w.copy() for w in qat.get_weights()]
    data = np.concatenate([np.full((8, 4), -1.0), np.full((8, 4), 2.0)]).astype("float32")
    calibrate(qat, data, batch_size=8)
    quantize_input = next(layer for layer in qat.layers if isinstance(layer, QuantizeLayer))
    assert float(quantize_input._ranges["min"].numpy()) == -1.0 and float(quantize_input._ranges["max"].numpy()) == 2.0
    for before, variable in zip(weights, qat.weights):  # only range variables moved
        if "min" not in variable.path and "max" not in variable.path:
            np.testing.assert_array_equal(before, variable.numpy())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"representative_dataset": None}, "needs representative_dataset"),
        ({"batch_size": 0}, "batch_size must be a positive int. Received: batch_size=0"),
        ({"max_examples": 1.5}, "max_examples must be a positive int. Received: max_examples=1.5"),
    ],
)
def test_calibrate_checks_its_arguments(kwargs, message):
    import keras
    import numpy as np

    from kopt.quantization import calibrate
    from kopt.quantization import quantize_model

    qat = quantize_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    arguments = {"representative_dataset": np.zeros((4, 4), "float32"), **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        calibrate(qat, **arguments)


def test_calibrated_ptq_keeps_the_recurrent_loop_float_and_agrees(tmp_path):
    import keras
    import numpy as np

    import tflite_export
    from kopt.quantization import quantize_calibrated

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 10, 6)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("int64")
    inputs = keras.Input((10, 6))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.LSTM(16)(inputs)))
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=3, verbose=0)
    with pytest.warns(UserWarning):
        path = quantize_calibrated(model, str(tmp_path / "lstm.tflite"), x[:256])
    ops = [op["op"] for op in tflite_export.inspect(path)["ops"]]
    assert "WHILE" in ops and "FULLY_CONNECTED" in ops
    reference = model.predict(x[256:], verbose=0)
    got = tflite_export.predict(path, x[256:])
    assert np.mean(reference.argmax(-1) == got.argmax(-1)) >= 0.98


@pytest.mark.parametrize("activation", ["hard_swish", "swish"])
def test_calibration_records_the_float_ranges_not_the_file_kernels_on_unset_ranges(activation, tmp_path):
    # Inference simulates the file's integer kernels on the ranges already set;
    # calibration must not, or each range is learned from a kernel run on an
    # empty range (MobileNetV3's first hard swish ended at [-0.0002, 0.002]
    # instead of [-0.375, 4.5], and LiteRT then refused the file).
    from kopt.quantization import QuantizeWrapper
    from kopt.quantization import calibrate
    from kopt.quantization import quantize_calibrated
    from kopt.quantization import quantize_model

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0))(inputs)
    x = keras.layers.Activation(activation, name="act")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    data = np.random.default_rng(0).normal(size=(64, 8, 8, 3)).astype("float32")
    floats = keras.Model(inputs, model.get_layer("act").output).predict(data, verbose=0)
    qat = calibrate(quantize_model(model), data, batch_size=16)
    wrapper = next(layer for layer in qat.layers if isinstance(layer, QuantizeWrapper) and layer.layer.name == "act")
    ranges = {v.path.split("/")[-1]: float(v.numpy()) for v in wrapper.non_trainable_weights if "output" in v.path}
    step = (floats.max() - floats.min()) / 255  # the QAT graph's rounded weights and inputs move it by a step or two
    assert abs(ranges["activation_output_min"] - floats.min()) <= 4 * step
    assert abs(ranges["activation_output_max"] - floats.max()) <= 4 * step
    path = quantize_calibrated(model, str(tmp_path / "m.tflite"), data)
    got = tflite_export.predict(path, data)
    assert np.mean(got.argmax(-1) == model.predict(data, verbose=0).argmax(-1)) >= 0.95
