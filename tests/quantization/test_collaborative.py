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
