"""kopt.quantization.strip: a float model with the quantized weights baked in."""

import keras
import numpy as np
import pytest

from kopt.quantization import DefaultQuantizeConfig
from kopt.quantization import LastValueQuantizer
from kopt.quantization import MovingAverageQuantizer
from kopt.quantization import QuantizeLayer
from kopt.quantization import QuantizeWrapper
from kopt.quantization import quantize_model
from kopt.quantization import strip_quantization

L = keras.layers


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _trained_qat():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            L.Conv2D(4, 3, use_bias=False, name="conv"),
            L.BatchNormalization(name="bn"),
            L.ReLU(name="relu"),
            L.DepthwiseConv2D(3, depth_multiplier=2, name="dw"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(3, name="logits"),
        ]
    )
    qat = quantize_model(model)
    qat.compile(keras.optimizers.SGD(0.05), "mse")
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype("float32")
    qat.fit(x, rng.normal(size=(32, 3)).astype("float32"), batch_size=8, verbose=0)
    return qat, x


def test_strip_removes_quantization_and_keeps_quantized_weights():
    qat, x = _trained_qat()
    stripped = strip_quantization(qat)
    assert [(type(layer).__name__, layer.name) for layer in stripped.layers] == [
        ("InputLayer", "image"),
        ("Identity", "quantize_image"),
        ("Conv2D", "conv"),
        ("Identity", "bn"),  # stays folded
        ("ReLU", "relu"),
        ("DepthwiseConv2D", "dw"),
        ("GlobalAveragePooling2D", "gap"),
        ("Dense", "logits"),
    ]
    assert stripped.compiled == qat.compiled
    for name in ("conv", "dw", "logits"):
        wrapper = qat.get_layer(f"quant_{name}")
        for expected, actual in zip(wrapper.quantized_weights(), stripped.get_layer(name).get_weights()):
            np.testing.assert_array_equal(actual, expected)
        kernel = stripped.get_layer(name).get_weights()[0]
        assert not np.array_equal(kernel, _numpy(wrapper.layer.weights[0]))  # rounded, not the float weights
    # Only activation rounding differs from the QAT model.
    difference = np.abs(_numpy(stripped(x)) - _numpy(qat(x)))
    assert difference.max() < 0.05 * np.abs(_numpy(qat(x))).max()
    assert difference.max() > 0.0


def test_stripped_model_shares_nothing_with_the_qat_model():
    qat, _ = _trained_qat()
    stripped = strip_quantization(qat)
    assert not {id(v) for v in qat.variables} & {id(v) for v in stripped.variables}
    assert not {id(layer) for layer in qat.layers} & {id(layer) for layer in stripped.layers}


def test_strip_of_a_sequential_of_wrappers():
    config = DefaultQuantizeConfig(["kernel"], LastValueQuantizer(symmetric=True, narrow_range=True))
    model = keras.Sequential(
        [keras.Input((4,)), QuantizeLayer(MovingAverageQuantizer()), QuantizeWrapper(L.Dense(2, name="fc"), config)]
    )
    x = np.random.default_rng(1).normal(size=(4, 4)).astype("float32")
    model(x, training=True)
    stripped = strip_quantization(model)
    assert isinstance(stripped, keras.Sequential)
    assert [type(layer).__name__ for layer in stripped.layers] == ["Identity", "Dense"]
    np.testing.assert_array_equal(stripped.layers[1].get_weights()[0], model.layers[1].quantized_weights()[0])


def test_strip_of_a_float_model_copies_it():
    model = keras.Sequential([keras.Input((3,)), L.Dense(2)])
    stripped = strip_quantization(model)
    x = np.ones((1, 3), "float32")
    np.testing.assert_array_equal(_numpy(stripped(x)), _numpy(model(x)))
    assert stripped.layers[0] is not model.layers[0]


def test_strip_rejects_non_models():
    with pytest.raises(ValueError, match="strip_quantization expects a keras.Model"):
        strip_quantization(L.Dense(2))
