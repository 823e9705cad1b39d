"""kopt.quantization.schemes: bit widths per scheme, lookup by name, and their effect."""

import keras
import numpy as np
import pytest

from kopt.quantization import quantize_model
from kopt.quantization.registry import Bits
from kopt.quantization.schemes import Default8BitQuantizeScheme
from kopt.quantization.schemes import Default16x8QuantizeScheme
from kopt.quantization.schemes import DefaultNBitQuantizeScheme
from kopt.quantization.schemes import get
from kopt.quantization.wrapper import QuantizeLayer
from kopt.quantization.wrapper import QuantizeWrapper
from kopt.testing import run_serialization_test


def test_bits_of_each_scheme():
    assert Default8BitQuantizeScheme().bits == Bits(8, 8, False, True)
    assert Default16x8QuantizeScheme().bits == Bits(8, 16, True, True)
    assert DefaultNBitQuantizeScheme().bits == Bits(4, 8, False, True)
    assert DefaultNBitQuantizeScheme(2, 6, disable_per_axis=True).bits == Bits(2, 6, False, False)
    assert Default8BitQuantizeScheme().export_mode == "int8"
    assert Default16x8QuantizeScheme().export_mode == "int16x8"
    assert DefaultNBitQuantizeScheme().export_mode == "int8"
    assert all(scheme().fold_batch_norm for scheme in (Default8BitQuantizeScheme, Default16x8QuantizeScheme))


@pytest.mark.parametrize(
    "name, scheme_class",
    [
        ("8bit", Default8BitQuantizeScheme),
        ("default_8bit", Default8BitQuantizeScheme),
        ("16x8", Default16x8QuantizeScheme),
        ("int16x8", Default16x8QuantizeScheme),
        ("4bit", DefaultNBitQuantizeScheme),
        ("n_bit", DefaultNBitQuantizeScheme),
    ],
)
def test_get_by_name(name, scheme_class):
    assert type(get(name)) is scheme_class


def test_get_passes_instances_and_defaults_to_8_bit():
    scheme = DefaultNBitQuantizeScheme(num_bits_weight=3)
    assert get(scheme) is scheme
    assert type(get(None)) is Default8BitQuantizeScheme


@pytest.mark.parametrize("identifier", ["int4", 8, Bits()])
def test_get_rejects_unknown_identifiers_naming_them(identifier):
    with pytest.raises(ValueError, match=r"Received: scheme=" + repr(identifier)[:5].replace("(", r"\(")):
        get(identifier)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_bits_weight": 1}, "num_bits_weight=1"),
        ({"num_bits_weight": 16}, "num_bits_weight=16"),
        ({"num_bits_activation": 9}, "num_bits_activation=9"),
        ({"num_bits_activation": True}, "num_bits_activation=True"),
    ],
)
def test_n_bit_validates_its_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DefaultNBitQuantizeScheme(**kwargs)


def test_schemes_serialize_and_print():
    scheme = DefaultNBitQuantizeScheme(num_bits_weight=3, num_bits_activation=7, disable_per_axis=True)
    restored = run_serialization_test(scheme, init_kwargs=scheme.get_config())
    assert restored.bits == scheme.bits
    assert repr(scheme) == "DefaultNBitQuantizeScheme(num_bits_weight=3, num_bits_activation=7, disable_per_axis=True)"
    assert repr(Default16x8QuantizeScheme()) == "Default16x8QuantizeScheme()"
    run_serialization_test(Default8BitQuantizeScheme())


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
            keras.layers.Flatten(),
            keras.layers.Dense(4),
        ]
    )


def test_four_bit_weights_use_at_most_16_values_per_output_channel():
    qat = quantize_model(_model(), scheme="4bit")
    qat(np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype("float32"), training=True)
    wrappers = [layer for layer in qat.layers if isinstance(layer, QuantizeWrapper)]
    assert len(wrappers) == 3
    for wrapper in wrappers:
        kernel = wrapper.quantized_weights()[0]
        channels = kernel.reshape(-1, kernel.shape[-2] * kernel.shape[-1]) if kernel.ndim == 4 else kernel
        counts = [len(np.unique(channels[..., c])) for c in range(channels.shape[-1])]
        # Symmetric narrow 4 bits: integers -7..7, 15 values.
        assert max(counts) <= 15, (wrapper.name, counts)
        assert max(counts) >= 8  # and the grid is really used, not collapsed
    assert len(np.unique(wrappers[-1].quantized_weights()[0])) <= 15  # Dense: per tensor


def test_16x8_scheme_quantizes_activations_symmetric_16_bit():
    qat = quantize_model(_model(), scheme=Default16x8QuantizeScheme())
    x = np.random.default_rng(1).normal(size=(4, 6, 6, 2)).astype("float32")
    qat(x, training=True)
    quantize_layer = qat.layers[1]
    assert isinstance(quantize_layer, QuantizeLayer)
    low, high = (float(keras.ops.convert_to_numpy(w)) for w in quantize_layer.weights)
    assert low == -high == pytest.approx(-np.abs(x).max())
    dense = qat.layers[-1]
    assert dense.quantize_config.activation_quantizer.num_bits == 16
    assert dense.quantize_config.weight_quantizer.num_bits == 8
