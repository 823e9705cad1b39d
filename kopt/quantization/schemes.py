"""Quantization schemes: the bit widths and transforms ``quantize_apply`` uses.

* :class:`Default8BitQuantizeScheme`: TFLite's int8 spec. Weights symmetric int8
  (``[-127, 127]``), per-channel for convolutions and per-tensor for Dense;
  activations asymmetric int8 per tensor; BatchNormalization folded.
* :class:`Default16x8QuantizeScheme`: int16 activations (symmetric, zero point 0)
  with int8 weights, TFLite's "16x8" mode, for models whose activations need more
  resolution than int8 gives.
* :class:`DefaultNBitQuantizeScheme`: experimental narrower grids (4-bit weights by
  default). The converter stores 4-bit weight grids as packed ``int4`` tensors
  (half the bytes of int8), which LiteRT's ``CONV_2D``, ``DEPTHWISE_CONV_2D`` and
  ``FULLY_CONNECTED`` kernels unpack; activations stay int8.
* ``"binary"`` and ``"ternary"``: 1-bit and ternary weights with a per-channel
  scale, stored on the int8 grid (:mod:`kopt.quantization.low_bit_schemes`).

All three read the same layer table (:mod:`kopt.quantization.registry`) with
different :class:`~kopt.quantization.registry.Bits`.

Collaborative schemes (tfmot's names) quantize a stripped pruned and/or
clustered model to int8 without undoing either technique
(:mod:`kopt.quantization.collaborative`):

* :class:`Default8BitPrunePreserveQuantizeScheme` (PQAT): zeros stay zero;
* :class:`Default8BitClusterPreserveQuantizeScheme` (CQAT): each weight keeps its
  clusters; with ``preserve_sparsity=True`` (PCQAT) its zeros too.
"""

from typing import Any

import keras

from kopt.quantization.collaborative import CollaborativeBits
from kopt.quantization.low_bit_schemes import BinaryQuantizeScheme
from kopt.quantization.low_bit_schemes import TernaryQuantizeScheme
from kopt.quantization.registry import Bits
from kopt.quantization.scheme_base import QuantizeScheme

__all__ = [
    "Default16x8QuantizeScheme",
    "Default8BitClusterPreserveQuantizeScheme",
    "Default8BitPrunePreserveQuantizeScheme",
    "Default8BitQuantizeScheme",
    "DefaultNBitQuantizeScheme",
    "QuantizeScheme",
    "get",
]


@keras.saving.register_keras_serializable(package="kopt")
class Default8BitQuantizeScheme(QuantizeScheme):
    """TFLite's int8 quantization: the default scheme.

    Example:

    >>> Default8BitQuantizeScheme().bits
    Bits(weights=8, activations=8, symmetric_activations=False, per_axis=True)
    """


@keras.saving.register_keras_serializable(package="kopt")
class Default16x8QuantizeScheme(QuantizeScheme):
    """int16 activations and int8 weights (TFLite's 16x8 mode).

    Example:

    >>> Default16x8QuantizeScheme().export_mode
    'int16x8'
    """

    bits = Bits(weights=8, activations=16, symmetric_activations=True)
    export_mode = "int16x8"


@keras.saving.register_keras_serializable(package="kopt")
class DefaultNBitQuantizeScheme(QuantizeScheme):
    """Experimental: ``num_bits_weight``-bit weights and ``num_bits_activation``-bit activations.

    Weights of 2 to 4 bits are stored as ``int4`` in the TFLite file, 5 to 8 bits
    as ``int8``. Activations below 5 bits train, but the file does not convert:
    the converter then makes ``int4`` activations, which TFLite's kernels reject.

    Args:
        num_bits_weight: Weight bits, 2 to 8.
        num_bits_activation: Activation bits, 2 to 8 (5 to 8 to export to TFLite).
        disable_per_axis: Use per-tensor weight ranges for convolutions too.

    Example:

    >>> DefaultNBitQuantizeScheme(num_bits_weight=4).bits.weights
    4
    """

    def __init__(self, num_bits_weight: int = 4, num_bits_activation: int = 8, disable_per_axis: bool = False):
        for name, value in (("num_bits_weight", num_bits_weight), ("num_bits_activation", num_bits_activation)):
            if not isinstance(value, int) or isinstance(value, bool) or not 2 <= value <= 8:
                raise ValueError(
                    f"DefaultNBitQuantizeScheme: {name} must be an integer from 2 to 8. Received: {name}={value!r}"
                )
        self.num_bits_weight = num_bits_weight
        self.num_bits_activation = num_bits_activation
        self.disable_per_axis = bool(disable_per_axis)
        self.bits = Bits(weights=num_bits_weight, activations=num_bits_activation, per_axis=not disable_per_axis)

    def get_config(self) -> dict[str, Any]:
        return {
            "num_bits_weight": self.num_bits_weight,
            "num_bits_activation": self.num_bits_activation,
            "disable_per_axis": self.disable_per_axis,
        }


@keras.saving.register_keras_serializable(package="kopt")
class Default8BitPrunePreserveQuantizeScheme(QuantizeScheme):
    """Sparsity-preserving int8 QAT (PQAT) of a stripped pruned model.

    Every weight's zeros when ``quantize_apply`` wraps it stay exactly zero.

    Example:

    >>> Default8BitPrunePreserveQuantizeScheme().bits.preserve_sparsity
    True
    """

    bits = CollaborativeBits(preserve_sparsity=True)


@keras.saving.register_keras_serializable(package="kopt")
class Default8BitClusterPreserveQuantizeScheme(QuantizeScheme):
    """Cluster-preserving int8 QAT (CQAT) of a stripped clustered model.

    The distinct values of each weight when ``quantize_apply`` wraps it become
    clusters that train as shared centroids, so the int8 file holds at most as
    many values per weight (per channel with ``cluster_per_channel``).

    Args:
        preserve_sparsity: Also keep the zeros exactly zero (PCQAT), for a model
            pruned and then clustered with ``preserve_sparsity=True``.
        cluster_per_channel: The model was clustered per output channel: number
            clusters within each channel and quantize convolutions per channel.
            Otherwise weights share one int8 scale per tensor, which maps ``K``
            shared values to at most ``K`` integers; a convolution with a folded
            BatchNormalization keeps its kernel's clusters shared across channels
            in units of the fold's per-channel scale, and is quantized per channel,
            which divides that scale out again.

    Example:

    >>> scheme = Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
    >>> scheme.bits.preserve_clusters, scheme.bits.per_axis
    (True, False)
    """

    def __init__(self, preserve_sparsity: bool = False, cluster_per_channel: bool = False):
        for name, value in (("preserve_sparsity", preserve_sparsity), ("cluster_per_channel", cluster_per_channel)):
            if not isinstance(value, bool):
                raise ValueError(
                    f"Default8BitClusterPreserveQuantizeScheme: {name} must be a bool. Received: {name}={value!r}"
                )
        self.preserve_sparsity = preserve_sparsity
        self.cluster_per_channel = cluster_per_channel
        self.bits = CollaborativeBits(
            per_axis=cluster_per_channel,
            preserve_sparsity=preserve_sparsity,
            preserve_clusters=True,
            cluster_per_channel=cluster_per_channel,
        )

    def get_config(self) -> dict[str, Any]:
        return {"preserve_sparsity": self.preserve_sparsity, "cluster_per_channel": self.cluster_per_channel}


_BY_NAME = {
    "8bit": Default8BitQuantizeScheme,
    "default_8bit": Default8BitQuantizeScheme,
    "16x8": Default16x8QuantizeScheme,
    "int16x8": Default16x8QuantizeScheme,
    "4bit": DefaultNBitQuantizeScheme,
    "n_bit": DefaultNBitQuantizeScheme,
    "8bit_prune_preserve": Default8BitPrunePreserveQuantizeScheme,
    "pqat": Default8BitPrunePreserveQuantizeScheme,
    "8bit_cluster_preserve": Default8BitClusterPreserveQuantizeScheme,
    "cqat": Default8BitClusterPreserveQuantizeScheme,
    "8bit_prune_cluster_preserve": lambda: Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True),
    "pcqat": lambda: Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True),
    "binary": BinaryQuantizeScheme,
    "ternary": TernaryQuantizeScheme,
}


def get(identifier: QuantizeScheme | str | None) -> QuantizeScheme:
    """Returns a scheme from an instance, a name (``"8bit"``, ``"4bit"``, ``"binary"``...) or ``None``.

    Example:

    >>> get("16x8")
    Default16x8QuantizeScheme()
    """
    if identifier is None:
        return Default8BitQuantizeScheme()
    if isinstance(identifier, QuantizeScheme):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(
        f"scheme must be a kopt.quantization QuantizeScheme or one of {sorted(_BY_NAME)}. Received: scheme={identifier!r}"
    )
