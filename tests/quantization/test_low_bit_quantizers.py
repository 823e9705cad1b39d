"""Binary and ternary weight quantizers: int8 grids per layer kind, learned scales, kept zeros, serialization."""

import keras
import numpy as np
import pytest

from kopt.quantization import BinaryWeightQuantizer
from kopt.quantization import DefaultQuantizeConfig
from kopt.quantization import QuantizeWrapper
from kopt.quantization import TernaryWeightQuantizer
from kopt.quantization.low_bit_quantizers import LowBitBits
from kopt.testing import run_serialization_test

L = keras.layers


def _wrapped(layer, quantizer, input_shape, seed=0):
    keras.utils.set_random_seed(seed)
    wrapper = QuantizeWrapper(layer, DefaultQuantizeConfig(["kernel"], quantizer))
    data = np.random.default_rng(seed).normal(size=(2,) + input_shape).astype("float32")
    wrapper(data, training=True)
    return wrapper, data


def _channels(kernel, channel_axes):
    return kernel.reshape(-1, int(np.prod(kernel.shape[kernel.ndim - channel_axes :])))


@pytest.mark.parametrize("quantizer_class, levels", [(BinaryWeightQuantizer, 2), (TernaryWeightQuantizer, 3)])
@pytest.mark.parametrize(
    "layer, input_shape, channel_axes",
    [
        (lambda: L.Conv2D(6, 3), (6, 6, 4), 1),
        (lambda: L.Conv1D(5, 3), (7, 8), 1),
        (lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (6, 6, 3), 2),
    ],
)
def test_convolution_codes_land_exactly_on_plus_minus_127_steps_per_channel(
    quantizer_class, levels, layer, input_shape, channel_axes
):
    quantizer = quantizer_class(channel_axes=channel_axes)
    wrapper, _ = _wrapped(layer(), quantizer, input_shape)
    kernel = _channels(wrapper.quantized_weights()[0], channel_axes)
    latent = _channels(keras.ops.convert_to_numpy(wrapper.layer.kernel), channel_axes)
    (ranges,) = wrapper._weight_ranges
    high = keras.ops.convert_to_numpy(ranges["max"])
    assert high.shape == (kernel.shape[1],)
    for channel in range(kernel.shape[1]):
        values = np.unique(kernel[:, channel])
        assert len(values) == levels, values
        step = high[channel] / 127.0
        np.testing.assert_allclose(values / step, [-127, 127] if levels == 2 else [-127, 0, 127], atol=1e-4)
        if levels == 2:  # XNOR-Net's scale, the mean |w| of the channel
            np.testing.assert_allclose(high[channel], np.abs(latent[:, channel]).mean(), rtol=1e-6)


def test_dense_codes_have_a_scale_per_unit_on_one_int8_grid():
    wrapper, _ = _wrapped(L.Dense(5), BinaryWeightQuantizer(channel_axes=1, per_axis=False), (40,))
    kernel = wrapper.quantized_weights()[0]
    latent = keras.ops.convert_to_numpy(wrapper.layer.kernel)
    alpha = np.abs(latent).mean(axis=0)
    step = alpha.max() / 127.0
    for unit in range(5):
        values = np.unique(kernel[:, unit])
        assert len(values) == 2
        np.testing.assert_allclose(
            values / step, np.array([-1, 1]) * np.round(127 * alpha[unit] / alpha.max()), atol=1e-4
        )
    assert len({round(v, 6) for v in np.abs(kernel).max(axis=0)}) > 1  # the units' scales really differ


def test_one_scale_for_the_tensor():
    wrapper, _ = _wrapped(L.Dense(4), TernaryWeightQuantizer(channel_axes=0, per_axis=False), (30,))
    assert len(np.unique(wrapper.quantized_weights()[0])) == 3


def test_learned_scale_starts_at_the_computed_one_and_trains():
    quantizer = BinaryWeightQuantizer(scale="learned")
    model = keras.Sequential(
        [keras.Input((5, 5, 2)), QuantizeWrapper(L.Conv2D(3, 3), DefaultQuantizeConfig(["kernel"], quantizer))]
    )
    wrapper = model.layers[0]
    scale = next(weight for weight in wrapper.trainable_weights if weight.path.endswith("kernel_scale"))
    start = keras.ops.convert_to_numpy(scale).copy()
    kernel = keras.ops.convert_to_numpy(wrapper.layer.kernel)
    np.testing.assert_allclose(start, np.abs(kernel.reshape(-1, 3)).mean(axis=0), rtol=1e-6)
    rng = np.random.default_rng(0)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(rng.normal(size=(32, 5, 5, 2)), rng.normal(size=(32, 3, 3, 3)), verbose=0, epochs=2)
    learned = keras.ops.convert_to_numpy(scale)
    assert np.abs(learned - start).max() > 1e-3
    quantized = wrapper.quantized_weights()[0].reshape(-1, 3)
    np.testing.assert_allclose(np.abs(quantized).max(axis=0), np.abs(learned), rtol=1e-5)


def test_ternary_preserve_sparsity_keeps_the_zeros_through_training():
    dense = L.Dense(6)
    dense.build((None, 20))
    kernel = np.random.default_rng(1).normal(size=(20, 6)).astype("float32")
    kernel[np.random.default_rng(2).random((20, 6)) < 0.6] = 0.0
    dense.kernel.assign(kernel)
    quantizer = TernaryWeightQuantizer(per_axis=False, preserve_sparsity=True)
    model = keras.Sequential([keras.Input((20,)), QuantizeWrapper(dense, DefaultQuantizeConfig(["kernel"], quantizer))])
    rng = np.random.default_rng(3)
    model.compile(keras.optimizers.Adam(0.05), "mse")
    model.fit(rng.normal(size=(64, 20)), rng.normal(size=(64, 6)), verbose=0, epochs=3)
    quantized = model.layers[0].quantized_weights()[0]
    assert np.all(quantized[kernel == 0.0] == 0.0)
    # The pruned latent weights get no gradient, so they stay where pruning left them.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(dense.kernel)[kernel == 0.0], 0.0)
    assert max(len(np.unique(quantized[:, unit])) for unit in range(6)) == 3


@pytest.mark.parametrize(
    "quantizer",
    [
        BinaryWeightQuantizer(),
        BinaryWeightQuantizer(channel_axes=2, scale="learned", clip_value=2.0),
        BinaryWeightQuantizer(channel_axes=0, per_axis=False),
        TernaryWeightQuantizer(channel_axes=1, per_axis=False, threshold_ratio=0.5, preserve_sparsity=True),
    ],
)
def test_quantizers_round_trip_through_config_and_json(quantizer):
    restored = run_serialization_test(quantizer, init_kwargs=quantizer.get_config())
    assert restored == quantizer


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BinaryWeightQuantizer(channel_axes=3), "channel_axes=3"),
        (lambda: BinaryWeightQuantizer(channel_axes=0), "per_axis=True"),
        (lambda: BinaryWeightQuantizer(scale="max"), "scale='max'"),
        (lambda: BinaryWeightQuantizer(clip_value=-1), "clip_value=-1"),
        (lambda: BinaryWeightQuantizer(num_bits=4), "num_bits=4"),
        (lambda: TernaryWeightQuantizer(threshold_ratio=0.0), "threshold_ratio=0.0"),
        (lambda: TernaryWeightQuantizer(preserve_sparsity="yes"), "preserve_sparsity='yes'"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_learned_scale_names_the_layer_it_cannot_read():
    with pytest.raises(ValueError, match="QuantizeWrapper"):
        BinaryWeightQuantizer(scale="learned").build((3, 2), "kernel", keras.layers.Layer())


def test_low_bit_bits_pick_channel_axes_per_layer_kind():
    bits = LowBitBits(levels=2)
    assert (bits.weight_quantizer(True).channel_axes, bits.weight_quantizer(True).per_axis) == (1, True)
    assert (bits.weight_quantizer(False).channel_axes, bits.weight_quantizer(False).per_axis) == (0, False)
    assert (bits.depthwise_quantizer().channel_axes, bits.dense_quantizer().per_axis) == (2, False)
    assert isinstance(LowBitBits(levels=3).dense_quantizer(), TernaryWeightQuantizer)
    assert isinstance(bits.dense_quantizer(), BinaryWeightQuantizer)
