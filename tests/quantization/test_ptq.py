"""Tests for kopt.quantization.ptq: calibration and kopt's calibrated PTQ."""

import re

import keras
import numpy as np
import pytest

import tflite_export


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


def test_quantize_calibrated_leaves_the_named_front_end_float(tmp_path):
    from kopt.quantization import quantize_calibrated

    inputs = keras.Input((16,))
    x = keras.layers.Dense(8, activation="relu", name="front")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    data = np.random.default_rng(0).normal(size=(64, 16)).astype("float32")
    path = quantize_calibrated(model, str(tmp_path / "front_float.tflite"), data, float_layers=["front"])
    integer, reasons = tflite_export.is_fully_integer(tflite_export.inspect(path))
    assert not integer and all(reason.startswith("op 0 FULLY_CONNECTED") for reason in reasons), reasons
    report = tflite_export.verify(path, model, (data, np.argmax(model.predict(data, verbose=0), axis=-1)))
    assert report["agreement"] >= 0.95, report
