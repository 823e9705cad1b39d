"""LeakyReLU and PReLU in QAT: fully integer files that compute what the QAT model computes."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import QuantizeWrapper
from kopt.quantization import file_ops
from kopt.quantization import quantize_model
from kopt.quantization.registry import ConverterRoundedQuantizer

L = keras.layers


@pytest.fixture
def pixels(cifar):
    return cifar("test", 96)[0] / 255.0


def _rectifier_net(make):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = L.BatchNormalization()(L.Conv2D(16, 3, padding="same", use_bias=False)(inputs))
    x = make(0)(x)
    x = L.MaxPooling2D()(L.Conv2D(16, 3, padding="same")(x))
    x = make(1)(x)
    x = L.Conv2D(16, 3, activation="leaky_relu")(x)  # keras.activations.leaky_relu inside the convolution
    return keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)))


_RECTIFIERS = {
    "leaky_relu": lambda index: L.LeakyReLU((0.1, 0.3)[index]),
    # One slope per position and channel, one per channel, one for all.
    "prelu": lambda index: L.PReLU(
        alpha_initializer=keras.initializers.RandomUniform(0.05, 0.4), shared_axes=(None, [1, 2])[index]
    ),
    "prelu_shared": lambda index: L.PReLU(alpha_initializer=keras.initializers.Constant(0.2), shared_axes=[1, 2, 3]),
}


def _trained_qat(make, images):
    model = _rectifier_net(make)
    qat = quantize_model(model)
    qat.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(images[:64, :16, :16], np.arange(64) % 10, batch_size=16, epochs=2, verbose=0)
    return qat


@pytest.mark.parametrize("kind", sorted(_RECTIFIERS))
def test_rectifiers_quantize_to_a_fully_integer_file_tensor_for_tensor(
    kind, pixels, probe_model, steps_apart, tmp_path, monkeypatch
):
    images = pixels[:, :16, :16]
    qat = _trained_qat(_RECTIFIERS[kind], images)
    wrapped = [layer for layer in qat.layers if isinstance(layer, QuantizeWrapper)]
    assert sum(isinstance(layer.layer, (L.LeakyReLU, L.PReLU)) for layer in wrapped) == 2
    probe = probe_model(qat)
    path = tflite_export.convert(probe, str(tmp_path / f"{kind}.tflite"), mode="int8")
    ok, reasons = tflite_export.is_fully_integer(path)
    assert ok, reasons
    ops = tflite_export.inspect(path)["op_counts"]
    assert ops.get("PRELU" if kind.startswith("prelu") else "LEAKY_RELU", 0) >= 2, ops
    apart = steps_apart(probe, path, images[64:])
    np.testing.assert_array_equal(apart, 0.0)
    # Rounding each as the real function rounded once is a step off on some outputs.
    monkeypatch.setattr(file_ops, "_rectifier_op", lambda wrapper, inputs: None)
    if kind != "prelu_shared":  # its multiplier happens to be exact enough here
        assert steps_apart(probe, path, images[64:]).max() >= 1.0


def test_prelu_slopes_train_on_the_grid_the_file_stores(pixels, tmp_path):
    qat = _trained_qat(_RECTIFIERS["prelu"], pixels)
    wrapper = next(layer for layer in qat.layers if isinstance(layer, QuantizeWrapper) and "p_re_lu" in layer.name)
    alpha = wrapper.layer.alpha.numpy()
    step = np.abs(alpha).max() / 127
    trained = wrapper.quantized_weights()[0]
    np.testing.assert_allclose(trained / step, np.round(alpha / step), atol=1e-3)
    path = tflite_export.convert(qat, str(tmp_path / "prelu.tflite"), mode="int8")
    stored = [
        t for t in tflite_export.inspect(path)["tensors"] if t["dtype"] == "int8" and t["shape"] == list(alpha.shape)
    ]
    assert stored, "the slope is stored as an int8 constant"
    # Saved and loaded without custom objects, the model computes the same.
    qat.save(tmp_path / "prelu.keras")
    loaded = keras.models.load_model(tmp_path / "prelu.keras")
    np.testing.assert_allclose(
        loaded.predict(pixels[:8, :16, :16], verbose=0), qat.predict(pixels[:8, :16, :16], verbose=0)
    )


def test_converter_rounded_quantizer_keeps_the_converters_grid():
    quantizer = ConverterRoundedQuantizer()
    assert ConverterRoundedQuantizer.from_config(quantizer.get_config()) == quantizer
    with pytest.raises(ValueError, match="per_axis=True"):
        ConverterRoundedQuantizer(per_axis=True)
    with pytest.raises(ValueError, match="num_bits=4"):
        ConverterRoundedQuantizer(num_bits=4)
