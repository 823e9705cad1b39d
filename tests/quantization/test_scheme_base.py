"""QuantizeScheme's hooks: per-layer bits and weights-only schemes, as quantize_apply reads them."""

import keras

from kopt.quantization import NoOpQuantizeConfig
from kopt.quantization import QuantizeAnnotate
from kopt.quantization import QuantizeLayer
from kopt.quantization import QuantizeScheme
from kopt.quantization import QuantizeWrapper
from kopt.quantization import quantize_annotate_layer
from kopt.quantization import quantize_model
from kopt.quantization.registry import Bits
from kopt.quantization.scheme_base import bits_by_layer

L = keras.layers


class _LastLayerFourBit(QuantizeScheme):
    def layer_bits(self, weighted_layers):
        return {weighted_layers[-1]: Bits(weights=4)}


class _WeightsOnly(QuantizeScheme):
    quantize_activations = False


def _model():
    return keras.Sequential(
        [keras.Input((6,)), L.Dense(5, name="a"), L.ReLU(name="relu"), L.Dense(4, name="b"), L.Dense(3, name="c")]
    )


def test_layer_bits_sees_the_kernels_in_graph_order_and_overrides_them():
    qat = quantize_model(_model(), scheme=_LastLayerFourBit())
    bits = {
        layer.layer.name: layer.quantize_config.weight_quantizer.num_bits
        for layer in qat.layers
        if isinstance(layer, QuantizeWrapper) and layer.quantize_config.weight_attrs
    }
    assert bits == {"a": 8, "b": 8, "c": 4}


def test_bits_by_layer_skips_layers_with_their_own_config_and_without_kernels():
    seen = []

    class Recording(QuantizeScheme):
        def layer_bits(self, weighted_layers):
            seen.extend(weighted_layers)
            return {}

    layers = {
        "a": QuantizeAnnotate(L.Dense(2)),
        "relu": QuantizeAnnotate(L.ReLU()),
        "own": quantize_annotate_layer(L.Dense(2), quantize_config=NoOpQuantizeConfig()),
        "plain": L.Dense(2),
        "b": QuantizeAnnotate(L.Conv2D(2, 3)),
    }
    bits_of = bits_by_layer(Recording(), layers)
    assert seen == ["a", "b"]
    assert bits_of("relu") == Bits()


def test_a_weights_only_scheme_adds_no_input_quantizer_and_no_activation_range():
    qat = quantize_model(_model(), scheme=_WeightsOnly())
    assert not any(isinstance(layer, QuantizeLayer) for layer in qat.layers)
    wrappers = [layer for layer in qat.layers if isinstance(layer, QuantizeWrapper)]
    kernels = {layer.layer.name for layer in wrappers if layer.quantize_config.get_weights_and_quantizers(layer.layer)}
    assert kernels == {"a", "b", "c"}
    for layer in wrappers:
        config = layer.quantize_config
        assert not config.get_activations_and_quantizers(layer.layer) and not config.get_output_quantizers(layer.layer)
