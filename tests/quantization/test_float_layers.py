"""Leaving named layers in float: the group each name takes along, the errors, the file it makes."""

import os
import warnings

import keras
import numpy as np
import pytest

import tflite_export
from kopt import quantization
from kopt.quantization.float_layers import float_group


def _model():
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="stem_relu")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    y = keras.layers.ReLU(name="depthwise_relu")(y)
    y = keras.layers.Conv2D(8, 1, name="project")(y)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="head")(x))


def test_a_named_layer_takes_its_folded_batch_norm_and_fused_relu_along():
    model = _model()
    assert float_group(model, ["stem"]) == {"stem", "stem_bn", "stem_relu"}
    assert float_group(model, ["depthwise"]) == {"depthwise", "depthwise_relu"}
    # A layer whose output nothing is fused into stays alone.
    assert float_group(model, ["project", "head"]) == {"project", "head"}


def test_unknown_names_and_a_single_string_are_refused_by_name():
    with pytest.raises(ValueError, match=r"does not have: \['Stem'\]. Received: float_layers=\['Stem', 'head'\]"):
        quantization.quantize_model(_model(), float_layers=["Stem", "head"])
    with pytest.raises(ValueError, match="float_layers='stem'"):
        quantization.quantize_model(_model(), float_layers="stem")


def test_the_file_keeps_the_named_layer_float_and_the_rest_int8(tmp_path):
    model = _model()
    images = np.random.default_rng(0).random((16, 12, 12, 3)).astype("float32")
    qat = quantization.quantize_model(model, float_layers=["stem"])
    wrapped = {layer.layer.name for layer in qat.layers if isinstance(layer, quantization.QuantizeWrapper)}
    assert "stem" not in wrapped and {"depthwise", "project", "head"} <= wrapped
    assert not any(isinstance(layer, quantization.QuantizeWrapper) for layer in qat.layers[:4])
    quantization.calibrate(qat, images)
    path = str(tmp_path / "stem_float.tflite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the converter's "still computes in float", here on purpose
        tflite_export.convert(qat, path, mode="int8")
    integer, reasons = tflite_export.is_fully_integer(tflite_export.inspect(path))
    assert not integer and reasons and all(reason.startswith("op 0 CONV_2D") for reason in reasons), reasons
    # The file computes what the model does, and the model saves and loads as any QAT model.
    labels = np.argmax(qat.predict(images, verbose=0), axis=-1)
    report = tflite_export.verify(path, qat, (images, labels))
    assert report["agreement"] >= 0.9, report
    qat.save(os.path.join(tmp_path, "qat.keras"))
    restored = keras.models.load_model(os.path.join(tmp_path, "qat.keras"))
    np.testing.assert_allclose(restored.predict(images, verbose=0), qat.predict(images, verbose=0), atol=1e-5)


def test_a_sequential_model_leaves_its_named_layer_and_quantizes_the_rest():
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="stem"), keras.layers.BatchNormalization(name="bn"),
        keras.layers.ReLU(name="relu"), keras.layers.Flatten(name="flat"), keras.layers.Dense(2, name="head"),
    ])  # fmt: skip
    qat = quantization.quantize_model(model, float_layers=["stem"])
    kinds = {layer.name: type(layer).__name__ for layer in qat.layers}
    assert (kinds["stem"], kinds["bn"], kinds["relu"]) == ("Conv2D", "BatchNormalization", "ReLU")
    # Flatten only moves data: the float part ends with it, and one quantize op follows.
    assert kinds["quant_head"] == "QuantizeWrapper" and kinds["quantize_flat"] == "QuantizeLayer"


def _chain():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="c1")(inputs)
    x = keras.layers.Conv2D(4, 3, name="mid")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Conv2D(4, 3, name="mid2")(x)
    x = keras.layers.Conv2D(4, 1, name="c3")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(x)))


@pytest.mark.parametrize(
    "names, warned, float_ops",
    [
        (["c1"], False, {"CONV_2D"}),  # at the input: no range comes in
        (["logits"], False, {"FULLY_CONNECTED"}),  # at the output: no range goes out
        (["mid", "mid2"], False, {"CONV_2D"}),  # side by side: the tensor between them has no range
        (["mid"], True, set()),  # int8 on both sides: the converter quantizes it
        (["mid2"], True, set()),
    ],
)
def test_the_warning_names_exactly_the_float_layers_the_converter_makes_int8(tmp_path, names, warned, float_ops):
    images = np.random.default_rng(1).uniform(0.0, 1.0, (16, 8, 8, 1)).astype("float32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        qat = quantization.quantize_model(_chain(), float_layers=names)
    messages = [str(w.message) for w in caught if "after all" in str(w.message)]
    assert bool(messages) == warned, messages
    if warned:
        assert f"float_layers={names}" in messages[0] and "model-optimization#523" in messages[0]
    quantization.calibrate(qat, images)
    path = str(tmp_path / "chain.tflite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tflite_export.convert(qat, path, mode="int8")
    _, reasons = tflite_export.is_fully_integer(tflite_export.inspect(path))
    assert {reason.split(":")[0].split()[-1] for reason in reasons} == float_ops, reasons
