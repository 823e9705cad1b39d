"""Tests for kopt.quantization.collaborative and the collaborative schemes."""

import keras
import numpy as np
import pytest

from kopt.quantization import DefaultQuantizeConfig
from kopt.quantization import QuantizeWrapper
from kopt.quantization import quantize_model
from kopt.quantization import schemes
from kopt.quantization import strip_quantization
from kopt.quantization.collaborative import CollaborativeBits
from kopt.quantization.collaborative import PreservingDepthwiseKernelQuantizer
from kopt.quantization.collaborative import PreservingWeightQuantizer
from kopt.quantization.collaborative import cluster_ids
from kopt.quantization.collaborative import cluster_means
from kopt.testing import run_model_saving_test
from kopt.testing import run_serialization_test


def test_cluster_ids_number_distinct_values_per_tensor_and_per_channel():
    values = np.array([[0.0, 2.0], [1.0, 2.0], [0.0, 1.0]])
    assert cluster_ids(values).tolist() == [[0, 2], [1, 2], [0, 1]]
    per_channel = cluster_ids(values, per_channel=True)
    assert per_channel.tolist() == [[0, 3], [1, 3], [0, 2]]


def test_cluster_means_average_each_cluster_and_share_its_gradient():
    import tensorflow as tf

    weights = tf.Variable([1.0, 3.0, 10.0, 0.0])
    with tf.GradientTape() as tape:
        means = cluster_means(weights, np.array([0, 0, 1, 2]))
        loss = tf.reduce_sum(means * tf.constant([1.0, 3.0, 5.0, 7.0]))
    np.testing.assert_allclose(means.numpy(), [2.0, 2.0, 10.0, 0.0])
    np.testing.assert_allclose(tape.gradient(loss, weights).numpy(), [2.0, 2.0, 5.0, 7.0])


def _clustered_pruned_dense():
    dense = keras.layers.Dense(4, name="fc")
    dense.build((None, 6))
    rng = np.random.default_rng(0)
    kernel = rng.choice([-0.5, 0.25, 0.75], size=(6, 4)).astype("float32")
    kernel[rng.random((6, 4)) < 0.5] = 0.0
    dense.kernel.assign(kernel)
    return keras.Sequential([keras.Input((6,)), dense]), kernel


@pytest.mark.parametrize(
    "scheme, keeps_zeros, max_values",
    [("pqat", True, None), ("cqat", False, 4), ("pcqat", True, 4), ("8bit", False, None)],
)
def test_training_keeps_what_each_scheme_preserves(scheme, keeps_zeros, max_values):
    model, kernel = _clustered_pruned_dense()
    qat = quantize_model(model, scheme=scheme)
    qat.compile(keras.optimizers.Adam(0.05), "mse")
    rng = np.random.default_rng(1)
    qat.fit(rng.normal(size=(64, 6)), rng.normal(size=(64, 4)), epochs=3, verbose=0)
    trained = strip_quantization(qat).get_layer("fc").kernel.numpy()
    unique = np.unique(trained)
    if keeps_zeros:
        assert np.all(trained[kernel == 0] == 0)
    else:
        assert np.any(trained[kernel == 0] != 0)
    if max_values is not None:
        assert len(unique) <= max_values
        # Each cluster kept its members together.
        for value in np.unique(kernel):
            assert len(np.unique(trained[kernel == value])) == 1
    else:
        assert len(unique) > 4


def test_preserving_qat_model_saves_and_loads_with_its_structure():
    model, kernel = _clustered_pruned_dense()
    qat = quantize_model(model, scheme=schemes.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True))
    names = sorted(w.name for w in qat.get_layer("quant_fc").non_trainable_weights)
    assert "kernel_cluster_ids" in names and "kernel_sparsity_mask" in names
    loaded = run_model_saving_test(qat, np.ones((2, 6), "float32"))
    ids = {w.name: w.numpy() for w in loaded.get_layer("quant_fc").weights}["kernel_cluster_ids"]
    assert len(np.unique(ids)) == len(np.unique(kernel))


def test_quantizers_and_schemes_serialize_and_are_found_by_name():
    run_serialization_test(
        PreservingWeightQuantizer(per_axis=True, preserve_clusters=True, cluster_per_channel=True),
        init_kwargs={"per_axis": True, "preserve_clusters": True, "cluster_per_channel": True},
    )
    run_serialization_test(PreservingDepthwiseKernelQuantizer(preserve_sparsity=True))
    for name in ("pqat", "8bit_prune_preserve"):
        assert isinstance(schemes.get(name), schemes.Default8BitPrunePreserveQuantizeScheme)
    pcqat = schemes.get("pcqat")
    assert isinstance(pcqat, schemes.Default8BitClusterPreserveQuantizeScheme) and pcqat.preserve_sparsity
    assert not schemes.get("cqat").preserve_sparsity
    rebuilt = schemes.Default8BitClusterPreserveQuantizeScheme.from_config(
        schemes.Default8BitClusterPreserveQuantizeScheme(cluster_per_channel=True).get_config()
    )
    assert rebuilt.bits.cluster_per_channel and rebuilt.bits.per_axis


def test_bits_pick_preserving_quantizers_with_the_cluster_grid():
    bits = schemes.Default8BitClusterPreserveQuantizeScheme().bits
    assert isinstance(bits, CollaborativeBits) and not bits.per_axis
    assert isinstance(bits.depthwise_quantizer(), PreservingWeightQuantizer)
    per_channel = CollaborativeBits(preserve_clusters=True, cluster_per_channel=True)
    assert isinstance(per_channel.depthwise_quantizer(), PreservingDepthwiseKernelQuantizer)


def test_bad_arguments_raise_naming_the_value():
    with pytest.raises(ValueError, match="preserve_sparsity=1"):
        PreservingWeightQuantizer(preserve_sparsity=1)
    with pytest.raises(ValueError, match="preserve_clusters=False"):
        PreservingWeightQuantizer(cluster_per_channel=True)
    with pytest.raises(ValueError, match="cluster_per_channel='no'"):
        schemes.Default8BitClusterPreserveQuantizeScheme(cluster_per_channel="no")
    layer = keras.layers.Layer()
    with pytest.raises(ValueError, match="QuantizeWrapper"):
        PreservingWeightQuantizer(preserve_sparsity=True).build((3,), "kernel", layer)


def test_depthwise_kernels_keep_zeros():
    depthwise = keras.layers.DepthwiseConv2D(3, name="dw")
    depthwise.build((None, 5, 5, 2))
    kernel = depthwise.kernel.numpy()
    kernel[..., 0, :] = 0.0
    depthwise.kernel.assign(kernel)
    quantizer = PreservingDepthwiseKernelQuantizer(preserve_sparsity=True)
    wrapper = QuantizeWrapper(depthwise, DefaultQuantizeConfig(["kernel"], quantizer))
    wrapper(np.ones((1, 5, 5, 2), "float32"))
    depthwise.kernel.assign(kernel + 1.0)
    quantized = wrapper.quantized_weights()[0]
    assert np.all(quantized[..., 0, :] == 0) and np.all(quantized[..., 1, :] != 0)


_GAMMA = np.linspace(0.5, 3.0, 32).astype("float32")
_VARIANCE = np.linspace(0.25, 4.0, 32).astype("float32")


def _clustered_conv_batch_norm(channels=32):
    """A Conv2D whose kernel holds 4 shared values in every output channel, then a BatchNormalization."""
    conv = keras.layers.Conv2D(channels, 3, use_bias=False, name="conv")
    batch_norm = keras.layers.BatchNormalization(name="bn")
    inputs = keras.Input((6, 6, 8))
    outputs = keras.layers.Dense(2, name="fc")(keras.layers.GlobalAveragePooling2D()(batch_norm(conv(inputs))))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    values = np.array([-0.5, 0.0, 0.25, 0.75], "float32")
    kernel = rng.choice(values, size=(3, 3, 8, channels)).astype("float32")
    kernel[0, 0, :4, :] = values[:, None]
    conv.kernel.assign(kernel)
    batch_norm.gamma.assign(_GAMMA[:channels])
    batch_norm.moving_variance.assign(_VARIANCE[:channels])
    return model, kernel


@pytest.mark.parametrize("scheme", ["cqat", "pcqat"])
def test_a_folded_kernel_keeps_its_clusters_shared_across_channels(scheme):
    model, kernel = _clustered_conv_batch_norm()
    qat = quantize_model(model, scheme=scheme)
    wrapper = qat.get_layer("quant_conv")
    [(_, quantizer)] = wrapper.quantize_config.get_weights_and_quantizers(wrapper.layer)
    assert quantizer.channel_scaled and quantizer.per_axis
    qat.compile(keras.optimizers.Adam(0.05), "mse")
    rng = np.random.default_rng(1)
    qat.fit(rng.normal(size=(32, 6, 6, 8)), rng.normal(size=(32, 2)), epochs=3, verbose=0)
    names = {w.name: w.numpy() for w in wrapper.weights}
    scale = names["kernel_channel_scale"]
    # The fold's scale per output channel, at the kernel's shape.
    expected = _GAMMA / np.sqrt(_VARIANCE + 1e-3)
    np.testing.assert_allclose(scale[0, 0, 0], expected, rtol=1e-5)
    quantized = wrapper.quantized_weights()[0]
    # One centroid per cluster of the unfolded kernel, shared by every channel.
    for value in np.unique(kernel):
        assert np.ptp(quantized[kernel == value] / scale[kernel == value]) < 1e-4, value
    if scheme == "pcqat":
        assert np.all(quantized[kernel == 0] == 0)
    # On the per-channel grid every channel (all hold the largest centroid) rounds them to the same integers.
    steps = np.abs(quantized).reshape(-1, 32).max(axis=0) / 127
    assert len(np.unique(np.round(quantized / steps))) <= 4


def test_an_unfolded_kernel_keeps_one_grid_and_a_folded_one_saves_and_loads():
    model, _ = _clustered_conv_batch_norm()
    qat = quantize_model(model, scheme="pcqat")
    for name, channel_scaled, per_axis in (("quant_conv", True, True), ("quant_fc", False, False)):
        wrapper = qat.get_layer(name)
        [(_, quantizer)] = wrapper.quantize_config.get_weights_and_quantizers(wrapper.layer)
        assert (quantizer.channel_scaled, quantizer.per_axis) == (channel_scaled, per_axis), name
    loaded = run_model_saving_test(qat, np.ones((2, 6, 6, 8), "float32"))
    scale = {w.name: w.numpy() for w in loaded.get_layer("quant_conv").weights}["kernel_channel_scale"]
    original = {w.name: w.numpy() for w in qat.get_layer("quant_conv").weights}["kernel_channel_scale"]
    np.testing.assert_array_equal(scale, original)


def test_bits_of_a_folded_kernel_share_clusters_only_when_clusters_are_per_tensor():
    folded = CollaborativeBits(per_axis=False, preserve_clusters=True).for_folded_kernel()
    assert folded.per_axis and folded.channel_scaled
    per_channel = CollaborativeBits(per_axis=True, preserve_clusters=True, cluster_per_channel=True)
    assert per_channel.for_folded_kernel() is per_channel
    sparsity_only = CollaborativeBits(preserve_sparsity=True)
    assert sparsity_only.for_folded_kernel() is sparsity_only
    with pytest.raises(ValueError, match="cluster_per_channel=True"):
        PreservingWeightQuantizer(preserve_clusters=True, cluster_per_channel=True, channel_scaled=True)


def test_a_channel_the_fold_zeroes_stays_zero_and_moves_no_centroid():
    model, kernel = _clustered_conv_batch_norm()
    gamma = _GAMMA.copy()
    gamma[1] = 0.0
    model.get_layer("bn").gamma.assign(gamma)
    qat = quantize_model(model, scheme="cqat")
    wrapper = qat.get_layer("quant_conv")
    quantized = wrapper.quantized_weights()[0]
    others = np.delete(kernel, 1, axis=-1)
    assert np.all(quantized[..., 1] == 0) and np.all(np.delete(quantized, 1, axis=-1)[others != 0] != 0)
    scale = {w.name: w.numpy() for w in wrapper.weights}["kernel_channel_scale"]
    live = scale != 0
    for value in np.unique(kernel):
        members = (kernel == value) & live
        # The zeroed channel's weights do not pull the shared centroids towards 0.
        np.testing.assert_allclose(quantized[members] / scale[members], value, rtol=0.02, atol=0.01)


def test_a_narrow_folded_kernel_keeps_one_scale_where_channel_scales_would_cost_more():
    """4 channels of 72 weights: 4 float scales cost more than the fewer distinct integers save."""
    model, kernel = _clustered_conv_batch_norm(channels=4)
    qat = quantize_model(model, scheme="pcqat")
    wrapper = qat.get_layer("quant_conv")
    [(_, quantizer)] = wrapper.quantize_config.get_weights_and_quantizers(wrapper.layer)
    assert quantizer.channel_scaled and not quantizer.per_axis
    quantized = wrapper.quantized_weights()[0]
    scale = {w.name: w.numpy() for w in wrapper.weights}["kernel_channel_scale"]
    for value in np.unique(kernel):
        assert np.ptp(quantized[kernel == value] / scale[kernel == value]) < 0.02, value
    loaded = run_model_saving_test(qat, np.ones((2, 6, 6, 8), "float32"))
    [(_, reloaded)] = loaded.get_layer("quant_conv").quantize_config.get_weights_and_quantizers(
        loaded.get_layer("quant_conv").layer
    )
    assert not reloaded.per_axis
