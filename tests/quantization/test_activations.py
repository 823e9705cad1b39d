"""kopt.quantization.activations: where TFLite quantizes around an activation."""

import keras
import numpy as np
import pytest

from kopt.quantization.activations import QuantizeAwareActivation
from kopt.quantization.activations import activation_name
from kopt.quantization.activations import fixed_output_quantizer
from kopt.quantization.activations import quantizes_input
from kopt.quantization.fake_quant import fake_quant
from kopt.quantization.quantize_config import DefaultQuantizeConfig
from kopt.quantization.quantizers import FixedRangeQuantizer
from kopt.quantization.quantizers import LastValueQuantizer
from kopt.quantization.quantizers import MovingAverageQuantizer
from kopt.quantization.wrapper import QuantizeWrapper


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("name", ["linear", "relu", "relu6"])
def test_fused_activations_do_not_quantize_their_input(name):
    assert activation_name(keras.activations.get(name)) == name
    assert not quantizes_input(keras.activations.get(name))


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softmax", "gelu", "swish", "elu"])
def test_separate_activations_quantize_their_input(name):
    assert quantizes_input(keras.activations.get(name))


@pytest.mark.parametrize(
    "name, bounds", [("sigmoid", (0.0, 255 / 256)), ("softmax", (0.0, 255 / 256)), ("tanh", (-1.0, 127 / 128))]
)
def test_fixed_output_grids_follow_tflite_int8_kernels(name, bounds):
    quantizer = fixed_output_quantizer(keras.activations.get(name), 8)
    assert quantizer == FixedRangeQuantizer(num_bits=8, init_min=bounds[0], init_max=bounds[1])
    # 16-bit activations get a learned range.
    assert fixed_output_quantizer(keras.activations.get(name), 16) is None


def test_other_activations_have_no_fixed_grid():
    assert fixed_output_quantizer(keras.activations.relu, 8) is None
    assert fixed_output_quantizer(keras.activations.gelu, 8) is None


def _aware(activation, quantizes_inputs, training=True):
    layer = keras.layers.Layer()
    quantizer = MovingAverageQuantizer()
    input_ranges = quantizer.build((), "input", layer) if quantizes_inputs else None
    output_ranges = quantizer.build((), "output", layer)
    return QuantizeAwareActivation(activation, quantizer, input_ranges, output_ranges, training), layer


def test_relu_quantizes_only_its_output():
    aware, layer = _aware(keras.activations.relu, False)
    x = np.array([-3.0, 0.37, 2.0], "float32")
    y = _numpy(aware(x))
    np.testing.assert_allclose(y, _numpy(fake_quant(np.maximum(x, 0), 0.0, 2.0)))
    assert [w.name for w in layer.weights] == ["output_min", "output_max"]
    np.testing.assert_allclose([_numpy(w) for w in layer.weights], [0.0, 2.0])
    assert aware.__name__ == "relu"


def test_sigmoid_quantizes_its_input_and_uses_the_fixed_output_grid():
    aware, layer = _aware(keras.activations.sigmoid, True)
    x = np.linspace(-6.0, 6.0, 301).astype("float32")
    y = _numpy(aware(x))
    ranges = {w.name: float(_numpy(w)) for w in layer.weights}
    assert (ranges["input_min"], ranges["input_max"]) == (-6.0, 6.0)
    quantized_input = _numpy(fake_quant(x, -6.0, 6.0))
    expected = _numpy(fake_quant(_numpy(keras.activations.sigmoid(quantized_input)), 0.0, 255 / 256))
    np.testing.assert_allclose(y, expected, atol=1e-7)
    np.testing.assert_allclose(y * 256, np.round(y * 256), atol=1e-4)
    assert y.min() >= 0.0 and y.max() <= 255 / 256 + 1e-7


def test_tanh_outputs_lie_on_the_one_over_128_grid():
    aware, _ = _aware(keras.activations.tanh, True)
    y = _numpy(aware(np.linspace(-4.0, 4.0, 101).astype("float32")))
    np.testing.assert_allclose(y * 128, np.round(y * 128), atol=1e-4)
    assert y.min() == -1.0 and y.max() <= 127 / 128 + 1e-7


def test_inference_uses_stored_ranges():
    aware, layer = _aware(keras.activations.relu, False)
    aware(np.array([0.0, 1.0], "float32"))
    frozen, _ = _aware(keras.activations.relu, False, training=False)
    frozen.output_weights = aware.output_weights
    y = _numpy(frozen(np.array([5.0, 0.5], "float32")))
    np.testing.assert_allclose(y, _numpy(fake_quant(np.array([5.0, 0.5], "float32"), 0.0, 1.0)))
    np.testing.assert_allclose([_numpy(w) for w in layer.weights], [0.0, 1.0])


@pytest.mark.parametrize(
    "activation, range_names", [("relu", ["activation_output"]), ("sigmoid", ["activation_input", "activation_output"])]
)
def test_wrapper_creates_input_ranges_only_for_unfused_activations(activation, range_names):
    config = DefaultQuantizeConfig(
        ["kernel"], LastValueQuantizer(symmetric=True, narrow_range=True), ["activation"], MovingAverageQuantizer()
    )
    wrapper = QuantizeWrapper(keras.layers.Dense(4, activation=activation), config)
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = _numpy(wrapper(x, training=True))
    names = sorted({w.name.rsplit("_", 1)[0] for w in wrapper.non_trainable_weights if "kernel" not in w.name})
    assert names == range_names
    # The wrapped layer keeps its own activation after the call.
    assert wrapper.layer.activation is keras.activations.get(activation)
    if activation == "sigmoid":
        np.testing.assert_allclose(y * 256, np.round(y * 256), atol=1e-4)
