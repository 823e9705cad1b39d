"""packed_size: bits per weight from each quantizer, a scale per channel, everything else at 32 bits."""

import keras
import pytest

from kopt.quantization import BinaryQuantizeScheme
from kopt.quantization import packed_size
from kopt.quantization import quantize_model

L = keras.layers


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            L.Conv2D(4, 3, name="conv"),  # 72 + 4
            L.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise"),  # 72 + 8
            L.Flatten(),
            L.Dense(5, name="dense"),  # 4 * 4 * 8 = 128 inputs: 640 + 5
        ]
    )


def _by_layer(size):
    return {(entry["layer"], entry["weight"].split("/")[-1]): entry for entry in size["tensors"]}


def test_float_model_packs_at_32_bits():
    size = packed_size(_model())
    assert size["packed_bytes"] == size["float32_bytes"] == 4 * (76 + 80 + 645)


def test_binary_kernels_take_one_bit_and_a_float32_scale_per_channel():
    size = packed_size(quantize_model(_model(), scheme=BinaryQuantizeScheme(first_and_last_8bit=False)))
    entries = _by_layer(size)
    assert [(entries[key]["bits"], entries[key]["scales"]) for key in sorted(entries)] == [
        (32, 0), (1, 4), (32, 0), (1, 5), (32, 0), (1, 8)
    ]  # fmt: skip
    # conv: 72 bits + 4 scales; depthwise: 72 bits + 8 scales; dense: 640 bits + 5 scales (one per unit).
    kernels = 25 + 41 + 100  # whole bytes: (72 + 128) / 8, ceil((72 + 256) / 8), (640 + 160) / 8
    assert size["packed_bytes"] == kernels + 4 * (4 + 8 + 5)
    assert size["float32_bytes"] == 4 * (76 + 80 + 645)


def test_eight_bit_weights_count_their_grids_scales():
    size = packed_size(quantize_model(_model()))
    entries = _by_layer(size)
    assert (entries[("conv", "kernel")]["bits"], entries[("conv", "kernel")]["scales"]) == (8, 4)
    assert entries[("depthwise", "kernel")]["scales"] == 8
    assert entries[("dense", "kernel")]["scales"] == 1  # Dense: one int8 scale
    ternary = packed_size(quantize_model(_model(), scheme="ternary"))
    assert _by_layer(ternary)[("depthwise", "kernel")]["bits"] == 2
    assert _by_layer(ternary)[("conv", "kernel")]["bits"] == 8  # the first layer stays 8-bit


def test_rejects_what_is_not_a_model():
    with pytest.raises(ValueError, match="Received: model="):
        packed_size(L.Dense(2))
