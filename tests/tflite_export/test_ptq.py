"""Tests for tflite_export.ptq: each post-training mode's dtypes, I/O types and accuracy."""

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export import ptq


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
    path = ptq.quantize_full_integer(
        model, tmp_path / "i.tflite", images[:200], input_type=io_type, output_type=io_type
    )
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
        (
            lambda m, p: ptq.quantize_full_integer(m, p, np.zeros((1, 8, 8, 1)), input_type="int16"),
            "input_type='int16'",
        ),
        (lambda m, p: ptq.quantize_full_integer(m, p, np.zeros((1, 8, 8, 1)), output_type="f"), "output_type='f'"),
        (lambda m, p: ptq.quantize_int16x8(m, p, None), "representative_dataset=None"),
    ],
)
def test_bad_arguments_fail_before_writing(trained, tmp_path, call, message):
    path = tmp_path / "x.tflite"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(trained[0], path)
    assert not path.exists()


def test_kopt_quantization_offers_the_same_functions():
    from kopt import quantization

    for name in ptq.__all__:
        assert getattr(quantization, name) is getattr(ptq, name) is getattr(tflite_export, name)
