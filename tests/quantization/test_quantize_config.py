"""kopt.quantization.quantize_config: the QuantizeConfig protocol and its two built-ins."""

import keras
import pytest

from kopt.quantization.quantize_config import DefaultQuantizeConfig
from kopt.quantization.quantize_config import NoOpQuantizeConfig
from kopt.quantization.quantize_config import QuantizeConfig
from kopt.quantization.quantizers import LastValueQuantizer
from kopt.quantization.quantizers import MovingAverageQuantizer
from kopt.testing import run_serialization_test


def _dense(**kwargs):
    layer = keras.layers.Dense(2, **kwargs)
    layer.build((None, 3))
    return layer


def _config(**kwargs):
    defaults = dict(
        weight_attrs=["kernel"],
        weight_quantizer=LastValueQuantizer(symmetric=True, narrow_range=True),
        activation_attrs=["activation"],
        activation_quantizer=MovingAverageQuantizer(),
    )
    return DefaultQuantizeConfig(**{**defaults, **kwargs})


def test_default_config_lists_weights_and_activations_with_their_quantizers():
    config = _config()
    layer = _dense(activation="relu")
    [(kernel, weight_quantizer)] = config.get_weights_and_quantizers(layer)
    assert kernel is layer.kernel
    assert weight_quantizer == LastValueQuantizer(symmetric=True, narrow_range=True)
    [(activation, activation_quantizer)] = config.get_activations_and_quantizers(layer)
    assert activation is keras.activations.relu
    assert activation_quantizer == MovingAverageQuantizer()
    assert config.get_output_quantizers(layer) == []
    assert not config.output_shares_input_range(layer)


def test_set_quantize_activations_replaces_the_attribute():
    config = _config()
    layer = _dense(activation="relu")

    def replacement(x):
        return x

    config.set_quantize_activations(layer, [replacement])
    assert layer.activation is replacement
    with pytest.raises(ValueError, match="Expected 1 activations for layer 'dense_q'. Received: 2"):
        config.set_quantize_activations(_dense(name="dense_q"), [replacement, replacement])


def test_output_quantizer_defaults_to_the_activation_quantizer():
    config = DefaultQuantizeConfig(activation_quantizer=MovingAverageQuantizer(num_bits=7), quantize_output=True)
    assert config.get_output_quantizers(None) == [MovingAverageQuantizer(num_bits=7)]
    config = DefaultQuantizeConfig(
        activation_quantizer=MovingAverageQuantizer(),
        quantize_output=True,
        output_quantizer=LastValueQuantizer(),
        shared_input_range=True,
    )
    assert config.get_output_quantizers(None) == [LastValueQuantizer()]
    assert config.output_shares_input_range(None)


def test_missing_attribute_names_the_layer_and_attribute():
    config = _config(weight_attrs=["depthwise_kernel"])
    with pytest.raises(ValueError, match=r"Layer 'fc' \(Dense\) has no attribute 'depthwise_kernel'"):
        config.get_weights_and_quantizers(_dense(name="fc"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weight_attrs": ["kernel"]}, "needs a weight_quantizer"),
        ({"activation_attrs": ["activation"]}, "needs an activation_quantizer"),
        ({"quantize_output": True}, "needs an activation_quantizer"),
        ({"weight_attrs": ["kernel"], "weight_quantizer": "last_value"}, "weight_quantizer='last_value'"),
        ({"activation_quantizer": MovingAverageQuantizer(), "shared_input_range": True}, "needs quantize_output=True"),
    ],
)
def test_default_config_validates_its_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DefaultQuantizeConfig(**kwargs)


def test_default_config_serializes_with_its_quantizers():
    config = DefaultQuantizeConfig(
        weight_attrs=["kernel"],
        weight_quantizer=LastValueQuantizer(num_bits=4, per_axis=True, symmetric=True, narrow_range=True),
        activation_attrs=["activation"],
        activation_quantizer=MovingAverageQuantizer(ema_decay=0.9),
        quantize_output=True,
        output_quantizer=MovingAverageQuantizer(num_bits=16, symmetric=True, narrow_range=True),
        shared_input_range=True,
    )
    restored = run_serialization_test(config, init_kwargs={"weight_attrs": ["kernel"], "quantize_output": True})
    assert restored.weight_quantizer == config.weight_quantizer
    assert restored.activation_quantizer == config.activation_quantizer
    assert restored.output_quantizer == config.output_quantizer
    assert restored.shared_input_range


def test_no_op_config_quantizes_nothing():
    config = NoOpQuantizeConfig()
    layer = _dense()
    assert config.get_weights_and_quantizers(layer) == []
    assert config.get_activations_and_quantizers(layer) == []
    assert config.get_output_quantizers(layer) == []
    config.set_quantize_activations(layer, [])
    config.set_quantize_weights(layer, [])
    run_serialization_test(config)


def test_a_tfmot_style_subclass_only_needs_the_tfmot_methods():
    class KernelOnly(QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return [(layer.kernel, LastValueQuantizer())]

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}

    config = KernelOnly.from_config({})
    assert config.output_shares_input_range(None) is False
    assert config.get_weights_and_quantizers(_dense())[0][1] == LastValueQuantizer()


def test_base_class_names_the_missing_method():
    class Empty(QuantizeConfig):
        pass

    for method, arguments in (
        ("get_weights_and_quantizers", (None,)),
        ("get_activations_and_quantizers", (None,)),
        ("set_quantize_activations", (None, [])),
        ("get_output_quantizers", (None,)),
        ("get_config", ()),
    ):
        with pytest.raises(NotImplementedError, match=f"Empty must implement {method}"):
            getattr(Empty(), method)(*arguments)
