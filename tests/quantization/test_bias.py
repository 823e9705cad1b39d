"""Biases are rounded in QAT exactly as the int8 file stores them (int32 on input_scale * weight_scale)."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import QuantizeLayer
from kopt.quantization import QuantizeWrapper
from kopt.quantization import quantize_model
from kopt.quantization.bias import fake_quant_bias
from kopt.quantization.bias import range_source
from tflite_export.flatbuffer import TFLiteFlatbuffer

L = keras.layers


def test_fake_quant_bias_rounds_per_channel_and_passes_gradients_through():
    import tensorflow as tf

    bias = tf.Variable([0.0149, -0.26, 3.0])
    with tf.GradientTape() as tape:
        rounded = fake_quant_bias(bias, np.array([0.01, 0.1, 1.0], "float32"))
        total = tf.reduce_sum(rounded * tf.constant([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(rounded.numpy(), [0.01, -0.3, 3.0], atol=1e-7)
    np.testing.assert_array_equal(tape.gradient(total, bias).numpy(), [1.0, 2.0, 3.0])


def _net(bias_scale=0.3):
    inputs = keras.Input((12, 12, 3))
    x = L.ZeroPadding2D()(inputs)
    x = L.Conv2D(8, 3, activation="relu", name="first")(x)
    x = L.MaxPooling2D()(x)
    x = L.Conv2D(8, 3, use_bias=False, name="second")(x)
    x = L.BatchNormalization(name="second_bn")(x)  # folds into a bias
    x = L.ReLU()(x)
    x = L.DepthwiseConv2D(3, padding="same", name="third")(x)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, L.Dense(5, name="logits")(x))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(scale=bias_scale, size=layer.bias.shape).astype("float32"))
    bn = model.get_layer("second_bn")
    bn.moving_mean.assign(rng.normal(scale=0.2, size=8).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, size=8).astype("float32"))
    return model


def test_each_weighted_wrapper_knows_the_quantizer_of_its_input():
    qat = quantize_model(_net())
    sources = {layer.layer.name: layer._input_source() for layer in qat.layers
               if isinstance(layer, QuantizeWrapper) and layer._input_source}  # fmt: skip
    assert isinstance(sources["first"], QuantizeLayer)  # through the ZeroPadding2D
    assert sources["second"].layer.name == "first"  # through the MaxPooling2D
    assert sources["third"].layer.name.startswith("re_lu")  # the fused ReLU quantizes, not the conv
    assert sources["logits"].layer.name.startswith("global_average_pooling2d")
    assert range_source(keras.Input((3,))) is None


def test_the_qat_bias_is_the_files_int32_bias(tmp_path):
    images = np.random.default_rng(1).normal(size=(64, 12, 12, 3)).astype("float32")
    qat = quantize_model(_net())
    for _ in range(3):
        qat(images, training=True)
    path = tflite_export.convert(qat, str(tmp_path / "bias.tflite"), mode="int8")
    flat = TFLiteFlatbuffer(path)
    file_biases = []  # (int32 values, scale), each sorted by value
    for tensor in range(flat.tensor_count):
        if flat.dtype(tensor) == "int32" and flat.is_constant(tensor) and flat.quantization(tensor):
            values = flat.values(tensor).astype(np.int64)
            scale = np.broadcast_to(np.asarray(flat.quantization(tensor)["scale"], np.float64), values.shape)
            order = np.argsort(values, kind="stable")
            file_biases.append((values[order], scale[order]))
    checked = 0
    for layer in qat.layers:
        if not (isinstance(layer, QuantizeWrapper) and getattr(layer.layer, "bias", None) is not None):
            continue
        captured = {}
        original = layer.run_with_values

        def spy(values, *args, _layer=layer, _original=original, **kwargs):
            # On the integer grid, the layer runs with the int32 accumulator's bias
            # and its activation scales by input_scale * weight_scale.
            captured["bias"] = keras.ops.convert_to_numpy(values[id(_layer.layer.bias)])
            captured["scale"] = keras.ops.convert_to_numpy(_layer.layer.activation.scale)
            return _original(values, *args, **kwargs)

        layer.run_with_values = spy
        qat(images[:1], training=False)  # eager, so the spy sees values
        del layer.run_with_values
        integers = captured["bias"].astype(np.float64)
        np.testing.assert_array_equal(integers, np.round(integers), err_msg=layer.name)
        order = np.argsort(integers, kind="stable")
        scale = np.broadcast_to(captured["scale"].astype(np.float64), integers.shape)[order]
        match = [
            b for b in file_biases
            if b[0].shape == integers.shape and np.array_equal(b[0], integers[order]) and np.allclose(b[1], scale, rtol=1e-5)
        ]  # fmt: skip
        assert match, f"{layer.name}: no int32 bias of the file equals the QAT bias {integers[order][:4]}"
        float_bias = np.sort(keras.ops.convert_to_numpy(layer.layer.bias.value).astype(np.float64))
        assert not np.allclose(float_bias, np.sort(integers[order] * scale), rtol=1e-6, atol=0), (
            f"{layer.name}: not rounded"
        )
        checked += 1
    assert checked == 4


def test_rounded_biases_survive_saving(tmp_path):
    images = np.random.default_rng(2).normal(size=(32, 12, 12, 3)).astype("float32")
    qat = quantize_model(_net())
    qat(images, training=True)
    qat.save(str(tmp_path / "q.keras"))
    loaded = keras.models.load_model(str(tmp_path / "q.keras"))
    kinds = {layer.layer.name: type(layer._input_source()).__name__ for layer in loaded.layers
             if isinstance(layer, QuantizeWrapper) and layer._input_source}  # fmt: skip
    assert kinds["first"] == "QuantizeLayer" and {"second", "third", "logits"} <= set(kinds)
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), qat.predict(images, verbose=0))


@pytest.mark.parametrize("shared", [False, True])
def test_a_layer_shared_between_differently_quantized_inputs_keeps_its_float_bias(shared):
    inputs = keras.Input((4,))
    dense = L.Dense(4, name="shared")
    a = dense(L.Dense(4, name="a")(inputs))
    b = dense(L.Dense(4, name="b")(inputs)) if shared else L.Dense(4, name="other")(L.Dense(4, name="b")(inputs))
    qat = quantize_model(keras.Model(inputs, L.Add()([a, b])))
    wrapper = next(layer for layer in qat.layers if isinstance(layer, QuantizeWrapper) and layer.layer.name == "shared")
    assert (wrapper._input_source is False) == shared
