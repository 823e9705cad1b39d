"""Collaborative QAT: weight quantizers that keep the zeros and clusters they are given.

Quantization-aware training fine-tunes every weight, so on its own it fills the
zeros of a pruned model and splits the shared values of a clustered one. The
quantizers here take a stripped pruned and/or clustered model as it is when
``quantize_apply`` wraps it, and keep that structure through training:

* sparsity (PQAT): a 0/1 ``sparsity_mask`` of the weight's non-zeros at wrap
  time; the quantized weight is ``w * mask``, so pruned weights stay exactly 0
  and get no gradient;
* clusters (CQAT): int32 ``cluster_ids`` numbering the distinct values of the
  weight at wrap time (per output channel with ``cluster_per_channel``); the
  quantized weight is each cluster's mean, ``mean(w[ids == k])`` at every
  position of cluster ``k``. A cluster's weights start equal and share one
  gradient, the mean of theirs, so they train as one centroid and the weight
  never holds more values than it started with;
* both (PCQAT): the mean, then the mask, so the zero cluster stays at 0.

A convolution whose BatchNormalization was folded into it has the kernel
``kernel * s``, with one scale ``s`` per output channel. Its clusters are those
of ``kernel`` (``channel_scaled``): a cluster's mean is taken in units of each
channel's scale, ``mean(w / s) * s``, so the ``K`` centroids stay shared by all
channels as the clustering stage made them, instead of becoming ``K`` per channel.

The result is then fake-quantized on the usual symmetric int8 grid. With
clusters, the grid is per tensor unless clusters are per channel or channel
scaled: one scale for the whole tensor maps its ``K`` shared values onto at most
``K`` integers, where per-channel scales would round the same centroid
differently in every channel. A folded kernel is the other way round: its
channels hold the centroids times different scales, which one tensor scale
rounds to up to ``K`` integers per channel, and a per-channel grid divides the
fold's scale out again, so every channel that holds the largest centroid rounds
the centroids to the same ``K`` integers (a smaller file after compression).

The mask and ids are non-trainable variables of the ``QuantizeWrapper``, so a
saved QAT model keeps them and resumes training with the same structure.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from kopt.quantization import transforms
from kopt.quantization.quantizers import LastValueQuantizer
from kopt.quantization.registry import Bits
from kopt.quantization.registry import DepthwiseKernelQuantizer

__all__ = [
    "CollaborativeBits", "PreservingDepthwiseKernelQuantizer", "PreservingWeightQuantizer", "constant_initializer",
    "per_channel_pays", "source_values",
]  # fmt: skip


class _Preserving:
    """Mix-in over a weight quantizer: mask and cluster-mean the weight before quantizing."""

    def _init_preserving(self, preserve_sparsity, preserve_clusters, cluster_per_channel, channel_scaled):
        for name, value in (
            ("preserve_sparsity", preserve_sparsity),
            ("preserve_clusters", preserve_clusters),
            ("cluster_per_channel", cluster_per_channel),
            ("channel_scaled", channel_scaled),
        ):
            if not isinstance(value, bool):
                raise ValueError(f"{type(self).__name__}: {name} must be a bool. Received: {name}={value!r}")
        if cluster_per_channel and not preserve_clusters:
            raise ValueError(
                f"{type(self).__name__}: cluster_per_channel needs preserve_clusters=True. "
                "Received: preserve_clusters=False"
            )
        if channel_scaled and (cluster_per_channel or not preserve_clusters):
            raise ValueError(
                f"{type(self).__name__}: channel_scaled shares clusters across channels, so it needs "
                "preserve_clusters=True and cluster_per_channel=False. Received: "
                f"preserve_clusters={preserve_clusters}, cluster_per_channel={cluster_per_channel}"
            )
        self.preserve_sparsity = preserve_sparsity
        self.preserve_clusters = preserve_clusters
        self.cluster_per_channel = cluster_per_channel
        self.channel_scaled = channel_scaled

    def _preserving_config(self):
        return {
            "preserve_sparsity": self.preserve_sparsity,
            "preserve_clusters": self.preserve_clusters,
            "cluster_per_channel": self.cluster_per_channel,
            "channel_scaled": self.channel_scaled,
        }

    def build(self, tensor_shape, name, layer):
        variables = super().build(tensor_shape, name, layer)
        values = source_values(layer, name, tuple(tensor_shape), type(self).__name__)
        if self.preserve_sparsity:
            variables["sparsity_mask"] = layer.add_weight(
                name=f"{name}_sparsity_mask",
                shape=values.shape,
                initializer=constant_initializer((values != 0).astype(np.float32)),
                trainable=False,
                autocast=False,
            )
        ids = None
        if self.channel_scaled:
            # A layer loaded from a file has no fold source: these start at "no
            # scale" and loading the file's weights sets them.
            clustered, scale = transforms.fold_source(layer.layer) or (values, np.ones(values.shape, np.float32))
            ids = cluster_ids(clustered)
            # A channel the fold zeroes (gamma 0) stays 0; its weights form a cluster of their own.
            ids = np.where(scale == 0, ids.max() + 1, ids).astype(np.int32)
            variables["channel_scale"] = layer.add_weight(
                name=f"{name}_channel_scale",
                shape=values.shape,
                initializer=constant_initializer(np.asarray(scale, np.float32)),
                trainable=False,
                autocast=False,
            )
        if self.preserve_clusters:
            variables["cluster_ids"] = layer.add_weight(
                name=f"{name}_cluster_ids",
                shape=values.shape,
                initializer=constant_initializer(
                    cluster_ids(values, per_channel=self.cluster_per_channel) if ids is None else ids
                ),
                dtype="int32",
                trainable=False,
            )
        return variables

    def __call__(self, inputs, training, weights, **kwargs):
        return super().__call__(_preserved(inputs, weights), training, weights, **kwargs)

    def range_of(self, inputs, weights):
        return super().range_of(_preserved(inputs, weights), weights)


def _preserved(values, weights):
    """``values`` with their clusters' means and their zeros put back, as the preserving quantizers use them."""
    if "channel_scale" in weights:
        scale = ops.cast(weights["channel_scale"].value, values.dtype)
        safe = ops.where(ops.equal(scale, 0), ops.ones_like(scale), scale)
        values = ops.multiply(cluster_means(ops.divide(values, safe), weights["cluster_ids"].value), scale)
    elif "cluster_ids" in weights:
        values = cluster_means(values, weights["cluster_ids"].value)
    if "sparsity_mask" in weights:
        values = ops.multiply(values, ops.cast(weights["sparsity_mask"].value, values.dtype))
    return values


@keras.saving.register_keras_serializable(package="kopt")
class PreservingWeightQuantizer(_Preserving, LastValueQuantizer):
    """A symmetric weight quantizer that keeps the weight's zeros and/or clusters.

    Build it through a collaborative scheme; its ``build`` reads the values of
    the weight it quantizes from the ``QuantizeWrapper`` it is built on.

    Args:
        num_bits: Bits of the integer grid.
        per_axis: One range per output channel.
        symmetric: As :class:`LastValueQuantizer` (``True`` for TFLite weights).
        narrow_range: As :class:`LastValueQuantizer` (``True`` for TFLite weights).
        preserve_sparsity: Keep the zeros the weight had when wrapped.
        preserve_clusters: Keep the distinct values the weight had as clusters.
        cluster_per_channel: Number clusters within each output channel.
        channel_scaled: The weight is a clustered kernel times one scale per
            output channel (a folded BatchNormalization): clusters are those of
            the kernel before the fold and stay shared across channels.

    Example:

    >>> import keras, numpy as np
    >>> from kopt.quantization import QuantizeWrapper, DefaultQuantizeConfig
    >>> dense = keras.layers.Dense(2)
    >>> dense.build((None, 3))
    >>> _ = dense.kernel.assign(np.array([[0.0, 0.5], [0.5, -1.0], [0.0, -1.0]], "float32"))
    >>> quantizer = PreservingWeightQuantizer(preserve_sparsity=True, preserve_clusters=True)
    >>> wrapper = QuantizeWrapper(dense, DefaultQuantizeConfig(["kernel"], quantizer))
    >>> _ = wrapper(np.ones((1, 3), "float32"))
    >>> sorted(set(wrapper.quantized_weights()[0].ravel().tolist()))
    [-1.0, 0.0, 0.5039370059967041]
    """

    def __init__(
        self,
        num_bits=8,
        per_axis=False,
        symmetric=True,
        narrow_range=True,
        preserve_sparsity=False,
        preserve_clusters=False,
        cluster_per_channel=False,
        channel_scaled=False,
    ):
        super().__init__(num_bits=num_bits, per_axis=per_axis, symmetric=symmetric, narrow_range=narrow_range)
        self._init_preserving(preserve_sparsity, preserve_clusters, cluster_per_channel, channel_scaled)

    def get_config(self):
        return {**super().get_config(), **self._preserving_config()}


@keras.saving.register_keras_serializable(package="kopt")
class PreservingDepthwiseKernelQuantizer(_Preserving, DepthwiseKernelQuantizer):
    """:class:`PreservingWeightQuantizer` for depthwise kernels (per-channel grid).

    Example:

    >>> PreservingDepthwiseKernelQuantizer(preserve_sparsity=True).get_config()["preserve_sparsity"]
    True
    """

    def __init__(
        self,
        num_bits=8,
        per_axis=True,
        symmetric=True,
        narrow_range=True,
        preserve_sparsity=False,
        preserve_clusters=False,
        cluster_per_channel=False,
        channel_scaled=False,
    ):
        super().__init__(num_bits=num_bits, per_axis=per_axis, symmetric=symmetric, narrow_range=narrow_range)
        self._init_preserving(preserve_sparsity, preserve_clusters, cluster_per_channel, channel_scaled)

    def get_config(self):
        return {**super().get_config(), **self._preserving_config()}


@dataclasses.dataclass(frozen=True)
class CollaborativeBits(Bits):
    """:class:`Bits` whose weight quantizers preserve sparsity and/or clusters.

    Example:

    >>> bits = CollaborativeBits(preserve_sparsity=True)
    >>> type(bits.weight_quantizer(per_axis=True)).__name__
    'PreservingWeightQuantizer'
    """

    preserve_sparsity: bool = False
    preserve_clusters: bool = False
    cluster_per_channel: bool = False
    channel_scaled: bool = False

    def weight_quantizer(self, per_axis):
        return PreservingWeightQuantizer(num_bits=self.weights, per_axis=per_axis, **self._preserving())

    def depthwise_quantizer(self):
        if not self.per_axis:
            return self.weight_quantizer(False)
        return PreservingDepthwiseKernelQuantizer(num_bits=self.weights, **self._preserving())

    def for_folded_kernel(self, kernel=None):
        """Shared clusters of a folded kernel, on a per-channel grid where it makes a smaller file.

        Args:
            kernel: The folded kernel; ``None`` takes the per-channel grid. Its
                grid is chosen by :func:`per_channel_pays`.
        """
        if not self.preserve_clusters or self.cluster_per_channel:
            return self
        per_axis = True if kernel is None else per_channel_pays(kernel)
        return dataclasses.replace(self, per_axis=per_axis, channel_scaled=True)

    def _preserving(self):
        return {
            "preserve_sparsity": self.preserve_sparsity,
            "preserve_clusters": self.preserve_clusters,
            "cluster_per_channel": self.cluster_per_channel,
            "channel_scaled": self.channel_scaled,
        }


# What one more output channel on a per-channel int8 grid adds to a gzipped file: its
# float32 scale, int64 zero point and bias grid. Measured on MobileNetV2-0.35's PCQAT
# files (7,103 channels): 8.9 bytes per channel beyond what its weights saved.
BYTES_PER_CHANNEL = 9.0


def per_channel_pays(values, bytes_per_channel=BYTES_PER_CHANNEL):
    """Whether a per-channel grid makes the gzipped file smaller than one scale for the tensor.

    A folded clustered kernel holds ``K`` shared values times one scale per
    output channel: per channel they round to about ``K`` integers for the whole
    tensor, on one scale to up to ``K`` per channel. Fewer distinct integers
    compress better, and every channel's own scale costs ``bytes_per_channel``.
    The saving is estimated from the entropy of the integers on either grid.

    Example:

    >>> wide = np.tile(np.array([-1.0, -0.5, 0.5, 1.0]), 64)[:, None] * np.linspace(1, 2, 64)
    >>> narrow = np.array([[-1.0, 1.0]]) * np.array([1.0, 1.5])
    >>> bool(per_channel_pays(wide)), bool(per_channel_pays(narrow))
    (True, False)
    """
    columns = np.asarray(values, np.float64).reshape(-1, np.shape(values)[-1])
    magnitude = np.abs(columns)

    def coded_bytes(steps):
        _, counts = np.unique(np.round(columns / steps), return_counts=True)
        shares = counts / counts.sum()
        return float(-(counts * np.log2(shares)).sum()) / 8

    tensor = coded_bytes(max(magnitude.max(), 1e-12) / 127)
    channels = coded_bytes(np.maximum(magnitude.max(axis=0), 1e-12) / 127)
    return tensor - channels > bytes_per_channel * columns.shape[1]


def cluster_ids(values, *, per_channel=False):
    """Numbers the distinct values of ``values`` (within each last-axis slice if ``per_channel``).

    Returns:
        int32 ids shaped like ``values``; equal values (in one channel) share an
        id, and ids of different channels never collide.

    Example:

    >>> cluster_ids(np.array([[0.5, 0.5], [0.5, 1.0]]), per_channel=True).tolist()
    [[0, 1], [0, 2]]
    """
    values = np.asarray(values)
    if not per_channel or values.ndim < 2:
        return np.unique(values, return_inverse=True)[1].reshape(values.shape).astype(np.int32)
    columns = values.reshape(-1, values.shape[-1])
    ids = np.empty(columns.shape, dtype=np.int32)
    offset = 0
    for channel in range(columns.shape[1]):
        _, inverse = np.unique(columns[:, channel], return_inverse=True)
        ids[:, channel] = inverse.reshape(-1) + offset
        offset += int(inverse.max()) + 1
    return ids.reshape(values.shape)


def cluster_means(values, ids):
    """Replaces every element of ``values`` by the mean of its cluster in ``ids``.

    Example:

    >>> np.asarray(cluster_means(np.array([1.0, 3.0, 5.0]), np.array([0, 0, 1]))).tolist()
    [2.0, 2.0, 5.0]
    """
    values = ops.convert_to_tensor(values)
    shape = tuple(values.shape)
    count = int(np.prod(shape))
    flat = ops.reshape(values, (-1,))
    flat_ids = ops.reshape(ops.convert_to_tensor(ids, "int32"), (-1,))
    # Ids are below the element count, a static bound however many clusters exist.
    sums = ops.segment_sum(flat, flat_ids, num_segments=count)
    sizes = ops.segment_sum(ops.ones_like(flat), flat_ids, num_segments=count)
    means = sums / ops.maximum(sizes, 1.0)
    return ops.reshape(ops.take(means, flat_ids), shape)


def source_values(layer, name, shape, who):
    """The values of the weight a quantizer named ``name`` is being built for on the wrapper ``layer``.

    Quantizers that keep something of the weight as it was wrapped (its zeros,
    its clusters, a starting scale) read it here; ``who`` names the quantizer in
    the errors.
    """
    # The QuantizeWrapper builds a weight's quantizer under the weight's path
    # inside the wrapped layer, with "/" written "_".
    inner = getattr(layer, "layer", None)
    if inner is None:
        raise ValueError(
            f"{who} reads the weight it quantizes from the QuantizeWrapper it is built on. Received: layer={layer!r}"
        )
    prefix = f"{inner.path}/" if inner.path else ""
    for variable in inner.weights:
        path = variable.path[len(prefix) :] if variable.path.startswith(prefix) else variable.name
        if path.replace("/", "_") == name and tuple(variable.shape) == shape:
            return keras.ops.convert_to_numpy(variable.value)
    raise ValueError(f"{who}: layer {inner.name!r} has no weight named {name!r} of shape {shape}.")


def constant_initializer(array):
    """An initializer that returns ``array`` (reshaped and cast), for non-trainable weights set at build."""

    def initializer(shape, dtype=None):
        return ops.cast(ops.reshape(ops.convert_to_tensor(array), shape), dtype)

    return initializer
