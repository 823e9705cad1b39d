"""Binary and ternary weight schemes: the step below 4-bit.

* :class:`BinaryQuantizeScheme` (``"binary"``): 1-bit weights, ``alpha_c *
  sign(w)`` per output channel (BinaryConnect with XNOR-Net's scale);
* :class:`TernaryQuantizeScheme` (``"ternary"``): ``{-alpha_c, 0, +alpha_c}`` per
  output channel (Ternary Weight Networks; a learned scale as in Trained Ternary
  Quantization).

Both train with straight-through gradients (:mod:`kopt.quantization.low_bit`)
and store the codes on TFLite's int8 weight grid, two (three) values per output
channel (:mod:`kopt.quantization.low_bit_quantizers`), so the int8 file runs on
any int8 runtime; :func:`kopt.quantization.packed_size` gives the size they
take packed at 1 (2) bits a weight.

**First and last layer.** By default (``first_and_last_8bit=True``) the first
and the last layer with a kernel, in graph order, keep 8-bit weights, as
BinaryConnect, XNOR-Net and TTQ do: the first sees the raw input through few
weights, the last decides the classes, and both are a small share of the
weights. ``first_and_last_8bit=False`` makes every kernel binary (ternary).

**Activations** are int8 (``num_bits_activation=8``, the default; the file is
fully integer, ``export_mode`` ``"int8"``) or float (``num_bits_activation=None``:
only weights are quantized; convert ``strip_quantization(model)`` with
``mode="dynamic"``, which stores kernels of more than 1,024 weights as int8
with the same two or three values per channel and leaves smaller ones float).

Example:

>>> import keras
>>> from kopt.quantization import quantize_model
>>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
...                           keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(2)])
>>> qat = quantize_model(model, scheme="binary")
>>> [type(layer.quantize_config.weight_quantizer).__name__ for layer in qat.layers[2:4]]
['LastValueQuantizer', 'BinaryWeightQuantizer']
"""

from collections.abc import Sequence
from typing import Any

import keras

from kopt.quantization import low_bit
from kopt.quantization.collaborative import CollaborativeBits
from kopt.quantization.low_bit_quantizers import SCALES
from kopt.quantization.low_bit_quantizers import LowBitBits
from kopt.quantization.registry import Bits
from kopt.quantization.scheme_base import QuantizeScheme

__all__ = ["BinaryQuantizeScheme", "TernaryQuantizeScheme"]


class _LowBitScheme(QuantizeScheme):
    """Arguments and first/last-layer bits shared by the binary and ternary schemes."""

    _levels = None

    def __init__(
        self,
        *,
        first_and_last_8bit: bool = True,
        scale: str = "mean",
        clip_value: float = 1.0,
        num_bits_activation: int | None = 8,
        threshold_ratio: float = low_bit.TWN_THRESHOLD_RATIO,
        preserve_sparsity: bool = False,
    ):
        name = type(self).__name__
        for key, value in (("first_and_last_8bit", first_and_last_8bit), ("preserve_sparsity", preserve_sparsity)):
            if not isinstance(value, bool):
                raise ValueError(f"{name}: {key} must be a bool. Received: {key}={value!r}")
        if scale not in SCALES:
            raise ValueError(f"{name}: scale must be one of {', '.join(SCALES)}. Received: scale={scale!r}")
        if isinstance(clip_value, bool) or not isinstance(clip_value, (int, float)) or not clip_value > 0:
            raise ValueError(f"{name}: clip_value must be a number above 0. Received: clip_value={clip_value!r}")
        if num_bits_activation not in (8, None) or isinstance(num_bits_activation, bool):
            raise ValueError(
                f"{name}: num_bits_activation must be 8 (int8 activations) or None (float activations). "
                f"Received: num_bits_activation={num_bits_activation!r}"
            )
        if isinstance(threshold_ratio, bool) or not isinstance(threshold_ratio, (int, float)):
            raise ValueError(
                f"{name}: threshold_ratio must be in (0, 1). Received: threshold_ratio={threshold_ratio!r}"
            )
        if not 0.0 < threshold_ratio < 1.0:
            raise ValueError(
                f"{name}: threshold_ratio must be in (0, 1). Received: threshold_ratio={threshold_ratio!r}"
            )
        self.first_and_last_8bit = first_and_last_8bit
        self.scale = scale
        self.clip_value = float(clip_value)
        self.num_bits_activation = num_bits_activation
        self.threshold_ratio = float(threshold_ratio)
        self.preserve_sparsity = preserve_sparsity
        self.quantize_activations = num_bits_activation is not None
        self.export_mode = "int8" if self.quantize_activations else "dynamic"
        self.bits = LowBitBits(
            levels=self._levels,
            scale=scale,
            clip_value=self.clip_value,
            threshold_ratio=self.threshold_ratio,
            preserve_sparsity=preserve_sparsity,
        )

    def layer_bits(self, weighted_layers: Sequence[str]) -> dict[str, Bits]:
        if not self.first_and_last_8bit or not weighted_layers:
            return {}
        # The 8-bit ends keep the zeros of a pruned model too.
        eight_bit = CollaborativeBits(preserve_sparsity=True) if self.preserve_sparsity else Bits()
        return {weighted_layers[0]: eight_bit, weighted_layers[-1]: eight_bit}

    def get_config(self) -> dict[str, Any]:
        return {
            "first_and_last_8bit": self.first_and_last_8bit,
            "scale": self.scale,
            "clip_value": self.clip_value,
            "num_bits_activation": self.num_bits_activation,
        }


@keras.saving.register_keras_serializable(package="kopt")
class BinaryQuantizeScheme(_LowBitScheme):
    """1-bit weights with a per-channel scale; int8 or float activations.

    Args:
        first_and_last_8bit: Keep the first and last layer with a kernel at 8 bits
            (default ``True``; see the module docstring).
        scale: ``"mean"`` (XNOR-Net's ``mean|w|`` per channel, computed) or
            ``"learned"`` (trainable, starting there).
        clip_value: Straight-through gradients pass where ``|w| <= clip_value``.
        num_bits_activation: 8, or ``None`` for float activations.

    Example:

    >>> BinaryQuantizeScheme().bits.levels, BinaryQuantizeScheme(num_bits_activation=None).export_mode
    (2, 'dynamic')
    """

    _levels = 2

    def __init__(
        self,
        first_and_last_8bit: bool = True,
        scale: str = "mean",
        clip_value: float = 1.0,
        num_bits_activation: int | None = 8,
    ):
        super().__init__(
            first_and_last_8bit=first_and_last_8bit,
            scale=scale,
            clip_value=clip_value,
            num_bits_activation=num_bits_activation,
        )


@keras.saving.register_keras_serializable(package="kopt")
class TernaryQuantizeScheme(_LowBitScheme):
    """Ternary weights ``{-alpha_c, 0, +alpha_c}`` per channel; int8 or float activations.

    Args:
        first_and_last_8bit: As :class:`BinaryQuantizeScheme`.
        scale: ``"mean"`` (TWN's mean ``|w|`` above the threshold, computed) or
            ``"learned"`` (trainable, starting there, as in TTQ).
        clip_value: As :class:`BinaryQuantizeScheme`.
        num_bits_activation: As :class:`BinaryQuantizeScheme`.
        threshold_ratio: ``r`` in the threshold ``delta_c = r * mean|w|``, in ``(0, 1)``.
        preserve_sparsity: Keep the zeros of a stripped pruned model: they stay
            exactly 0 through training, in the 8-bit first and last layers too.

    Example:

    >>> TernaryQuantizeScheme(preserve_sparsity=True).bits.preserve_sparsity
    True
    """

    _levels = 3

    def __init__(
        self,
        first_and_last_8bit: bool = True,
        scale: str = "mean",
        clip_value: float = 1.0,
        num_bits_activation: int | None = 8,
        threshold_ratio: float = low_bit.TWN_THRESHOLD_RATIO,
        preserve_sparsity: bool = False,
    ):
        super().__init__(
            first_and_last_8bit=first_and_last_8bit,
            scale=scale,
            clip_value=clip_value,
            num_bits_activation=num_bits_activation,
            threshold_ratio=threshold_ratio,
            preserve_sparsity=preserve_sparsity,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "threshold_ratio": self.threshold_ratio,
            "preserve_sparsity": self.preserve_sparsity,
        }
