"""tflite_export.convert: modes, dtypes, argument checks, atomic writes."""

import os

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export.verify import load_interpreter


@pytest.fixture(scope="module")
def model_and_data():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
        ]
    )
    data = np.random.default_rng(0).random((64, 8, 8, 1)).astype(np.float32)
    return model, data


def _tensor_types(path):
    interpreter = load_interpreter(path)
    return interpreter.get_input_details()[0]["dtype"], interpreter.get_output_details()[0]["dtype"]


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic", "int8", "int16x8"])
def test_every_mode_converts_and_agrees_with_keras(tmp_path, model_and_data, mode):
    model, data = model_and_data
    path = tflite_export.convert(
        model,
        str(tmp_path / f"{mode}.tflite"),
        mode=mode,
        representative_dataset=data if mode.startswith("int") else None,
    )
    outputs = tflite_export.predict(path, data)
    expected = model.predict(data, verbose=0)
    assert outputs.shape == expected.shape
    tolerance = {"float32": 1e-5, "float16": 1e-2, "dynamic": 0.1, "int8": 0.2, "int16x8": 0.1}[mode]
    assert np.max(np.abs(outputs - expected)) < tolerance * max(1.0, np.max(np.abs(expected)))


def test_float16_and_dynamic_shrink_the_file(tmp_path):
    # The converter quantizes only tensors of 1024+ values, so the kernel is 64x64.
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64), keras.layers.Dense(3)])
    sizes = {
        mode: os.path.getsize(tflite_export.convert(model, str(tmp_path / f"{mode}.tflite"), mode=mode))
        for mode in ("float32", "float16", "dynamic")
    }
    assert sizes["float16"] < 0.7 * sizes["float32"]
    assert sizes["dynamic"] < 0.5 * sizes["float32"]


def test_int8_io_types(tmp_path, model_and_data):
    model, data = model_and_data
    path = tflite_export.convert(
        model,
        str(tmp_path / "q.tflite"),
        mode="int8",
        representative_dataset=data,
        inference_input_type="int8",
        inference_output_type="int8",
    )
    assert [np.dtype(t).name for t in _tensor_types(path)] == ["int8", "int8"]
    # predict quantizes the float inputs and dequantizes the outputs.
    agreement = np.mean(
        np.argmax(tflite_export.predict(path, data), -1) == np.argmax(model.predict(data, verbose=0), -1)
    )
    assert agreement >= 0.9


def test_converts_from_a_keras_file(tmp_path, model_and_data):
    model, data = model_and_data
    keras_path = str(tmp_path / "m.keras")
    model.save(keras_path)
    path = tflite_export.convert(keras_path, str(tmp_path / "m.tflite"))
    np.testing.assert_allclose(tflite_export.predict(path, data), model.predict(data, verbose=0), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"output_path": "model.tfl"}, "must end in '.tflite'"),
        ({"mode": "int4"}, "mode must be one of"),
        ({"mode": "int8"}, "needs representative_dataset"),
        ({"inference_input_type": "int8"}, "needs an integer mode"),
        ({"inference_output_type": "float64"}, "inference_output_type must be one of"),
        ({"mode": "int8", "representative_dataset": [1, 2]}, "representative_dataset must be"),
    ],
)
def test_bad_arguments_fail_before_any_work(tmp_path, model_and_data, kwargs, message):
    model, _ = model_and_data
    kwargs = {"output_path": str(tmp_path / "x.tflite"), **kwargs}
    with pytest.raises(ValueError, match=message):
        tflite_export.convert(model, **kwargs)
    assert os.listdir(tmp_path) == []


def test_missing_or_corrupt_model_file(tmp_path):
    with pytest.raises(ValueError, match="neither a keras.Model nor an existing file"):
        tflite_export.convert(str(tmp_path / "absent.keras"), str(tmp_path / "x.tflite"))
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="not a loadable Keras model"):
        tflite_export.convert(str(corrupt), str(tmp_path / "x.tflite"))


def test_failed_conversion_keeps_the_previous_file(tmp_path):
    # erfinv has no builtin TFLite kernel; without Flex the conversion must fail.
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(keras.ops.erfinv)(inputs))
    path = tmp_path / "keep.tflite"
    path.write_bytes(b"previous good file")
    with pytest.raises(tflite_export.ConversionError, match="no builtin TFLite kernel: tf.Erfinv"):
        tflite_export.convert(model, str(path))
    assert path.read_bytes() == b"previous good file"
    assert sorted(os.listdir(tmp_path)) == ["keep.tflite"]


def _mixed_model():
    """Dense, Conv, DepthwiseConv, BatchNormalization, Add and pooling in one graph."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    branch = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Add()([x, branch])
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4)(keras.layers.Dense(16, activation="relu")(x))
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(1).random((600, 12, 12, 3)).astype(np.float32)
    labels = (images[..., 0].mean(axis=(1, 2)) * 4).astype("int32").clip(0, 3)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, epochs=3, verbose=0)
    return model, images


@pytest.fixture(scope="module")
def mixed():
    return _mixed_model()


@pytest.mark.parametrize(
    "mode, activation_dtype, weight_dtype, min_agreement",
    [
        ("float32", "float32", "float32", 1.0),
        ("float16", "float32", "float16", 0.995),
        # The converter leaves tensors under 1024 values in float in dynamic mode,
        # and every kernel here is smaller (the Dense test above covers int8 weights).
        ("dynamic", "float32", "float32", 0.95),
        ("int8", "int8", "int8", 0.9),
        ("int16x8", "int16", "int8", 0.98),
    ],
)
def test_round_trip_of_a_model_with_every_common_layer(
    tmp_path, mixed, mode, activation_dtype, weight_dtype, min_agreement
):
    model, images = mixed
    representative = images[:128] if mode.startswith("int") else None
    path = tflite_export.convert(model, tmp_path / f"{mode}.tflite", mode=mode, representative_dataset=representative)
    expected = model.predict(images, verbose=0).argmax(-1)
    agreement = float(np.mean(tflite_export.predict(path, images).argmax(-1) == expected))
    assert agreement >= min_agreement
    report = tflite_export.inspect(path)
    conv = next(op for op in report["ops"] if op["op"] == "CONV_2D")
    assert conv["inputs"][0]["dtype"] == activation_dtype
    kernel = next(t for t in report["tensors"] if t["parameter"] and len(t["shape"]) == 4)
    assert kernel["dtype"] == weight_dtype
    assert not report["flex_ops"]


def test_pruned_model_is_stripped_before_conversion(tmp_path, model_and_data):
    from kopt import pruning

    model, data = model_and_data
    pruned = pruning.prune_low_magnitude(model, pruning_schedule=pruning.ConstantSparsity(0.5, 0))
    pruning.UpdatePruningStep().set_model(pruned)
    for layer in pruned.layers:
        if isinstance(layer, pruning.PruneLowMagnitude):
            layer.start_schedule()
    path = tflite_export.convert(pruned, tmp_path / "p.tflite")
    report = tflite_export.inspect(path)
    assert not any("prune" in op["op"].lower() for op in report["ops"])
    np.testing.assert_allclose(
        tflite_export.predict(path, data), pruning.strip_pruning(pruned).predict(data, verbose=0), atol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size must be 'auto', None or a positive int. Received: batch_size=0"),
        ({"batch_size": True}, "Received: batch_size=True"),
        ({"batch_size": 2.0}, "Received: batch_size=2.0"),
        ({"strip_strings": "yes"}, "strip_strings must be True or False. Received: strip_strings='yes'"),
    ],
)
def test_bad_deployment_arguments_fail_before_any_work(tmp_path, model_and_data, kwargs, message):
    model, _ = model_and_data
    with pytest.raises(ValueError, match=message):
        tflite_export.convert(model, str(tmp_path / "x.tflite"), **kwargs)
    assert os.listdir(tmp_path) == []


def test_fixed_batch_has_static_shapes_and_no_shape_ops(tmp_path, model_and_data):
    model, data = model_and_data
    dynamic = tflite_export.convert(model, str(tmp_path / "dynamic.tflite"))
    fixed = tflite_export.convert(model, str(tmp_path / "fixed.tflite"), batch_size=5)
    detail = load_interpreter(fixed).get_input_details()[0]
    assert list(detail["shape_signature"]) == [5, 8, 8, 1]
    shape_ops = {"SHAPE", "STRIDED_SLICE", "PACK"}
    assert shape_ops & set(tflite_export.inspect(dynamic)["op_counts"])  # Flatten of a dynamic batch.
    assert not shape_ops & set(tflite_export.inspect(fixed)["op_counts"])
    assert os.path.getsize(fixed) < os.path.getsize(dynamic)
    # 64 images run as 13 steps of 5; the last one is padded and trimmed.
    np.testing.assert_allclose(tflite_export.predict(fixed, data), model.predict(data, verbose=0), atol=1e-5)


def test_fixed_batch_of_a_model_with_two_inputs(tmp_path):
    left, right = keras.Input((3,)), keras.Input((2,))
    model = keras.Model([left, right], keras.layers.Dense(2)(keras.layers.Concatenate()([left, right])))
    path = tflite_export.convert(model, str(tmp_path / "two.tflite"), batch_size=1)
    shapes = sorted(list(d["shape_signature"]) for d in load_interpreter(path).get_input_details())
    assert shapes == [[1, 2], [1, 3]]


def test_fixed_batch_needs_known_inputs(tmp_path):
    class Unbuilt(keras.Model):
        def call(self, x):
            return x * 2.0

    with pytest.raises(ValueError, match="has no known inputs.*Received: batch_size=1"):
        tflite_export.convert(Unbuilt(), str(tmp_path / "u.tflite"), batch_size=1)
    assert os.listdir(tmp_path) == []


def test_strip_strings_drops_names_and_keeps_the_arithmetic(tmp_path, model_and_data):
    model, data = model_and_data
    named = tflite_export.convert(model, str(tmp_path / "named.tflite"), mode="int8", representative_dataset=data)
    stripped = tflite_export.convert(
        model, str(tmp_path / "stripped.tflite"), mode="int8", representative_dataset=data, strip_strings=True
    )
    assert os.path.getsize(stripped) < os.path.getsize(named)
    interpreter = load_interpreter(stripped)
    assert interpreter.get_signature_list() == {}
    assert {d["name"] for d in interpreter.get_tensor_details()} == {""}
    assert tflite_export.inspect(stripped)["op_counts"] == tflite_export.inspect(named)["op_counts"]
    np.testing.assert_array_equal(tflite_export.predict(stripped, data), tflite_export.predict(named, data))


def test_quantization_aware_model_with_fixed_batch_and_stripped_strings(tmp_path, model_and_data):
    from kopt import quantization

    model, data = model_and_data
    aware = quantization.quantize_model(model)
    aware.predict(data, verbose=0)
    path = tflite_export.convert(aware, str(tmp_path / "qat.tflite"), mode="int8", batch_size=1, strip_strings=True)
    assert tflite_export.is_fully_integer(path)
    agreement = np.mean(
        np.argmax(tflite_export.predict(path, data), -1) == np.argmax(aware.predict(data, verbose=0), -1)
    )
    assert agreement >= 0.9
