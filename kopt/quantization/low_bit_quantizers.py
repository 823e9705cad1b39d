"""Binary and ternary weight quantizers: low-bit codes on TFLite's int8 grid.

:class:`BinaryWeightQuantizer` replaces a kernel by ``alpha_c * sign(w)`` and
:class:`TernaryWeightQuantizer` by ``alpha_c * sign(w) * [|w| > delta_c]`` (the
maths and gradients are in :mod:`kopt.quantization.low_bit`), then put the result
on the symmetric int8 grid of :class:`~kopt.quantization.LastValueQuantizer`, so
that the int8 TFLite file stores the codes and every int8 runtime runs them:

* per-channel grid (``per_axis=True``: convolutions): channel ``c``'s range is
  ``[-alpha_c, alpha_c]``, so ``+-alpha_c`` lands exactly on ``+-127`` and 0 on 0:
  each channel of the file holds ``{-127, 127}`` (binary) or ``{-127, 0, 127}``
  (ternary) and a scale;
* per-tensor grid (Dense, whose int8 ``FULLY_CONNECTED`` the converter only
  accepts with one weight scale from a quantization-aware graph): channel ``c``'s
  values land on ``+-round(127 * alpha_c / max_c alpha_c)``, still two (three)
  values per output channel.

``channel_axes`` says which trailing axes index output channels: 1 for
Conv1D/2D/3D and Dense kernels, 2 for a DepthwiseConv2D kernel ``(h, w, in,
multiplier)``, whose ``in * multiplier`` channels each get a scale, and 0 for one
scale for the whole tensor (EinsumDense, transposed convolutions, recurrent
kernels, embeddings: layers whose output channels are not the last axis or that
TFLite runs on one scale).

The scale ``alpha_c`` is computed from the weights at every step (``scale="mean"``,
XNOR-Net and TWN) or learned (``scale="learned"``, as Trained Ternary
Quantization learns it): a trainable weight of the wrapper, one per channel,
starting at the computed value of the weights it wraps.

Example:

>>> import keras, numpy as np
>>> from kopt.quantization import DefaultQuantizeConfig, QuantizeWrapper
>>> conv = keras.layers.Conv2D(4, 3)
>>> wrapper = QuantizeWrapper(conv, DefaultQuantizeConfig(["kernel"], BinaryWeightQuantizer()))
>>> _ = wrapper(np.ones((1, 5, 5, 2), "float32"), training=True)
>>> kernel = wrapper.quantized_weights()[0]
>>> [len(np.unique(kernel[..., c])) for c in range(4)]
[2, 2, 2, 2]
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from kopt.quantization import low_bit
from kopt.quantization.collaborative import constant_initializer
from kopt.quantization.collaborative import source_values
from kopt.quantization.quantizers import LastValueQuantizer
from kopt.quantization.registry import Bits

__all__ = ["BinaryWeightQuantizer", "LowBitBits", "TernaryWeightQuantizer"]

SCALES = ("mean", "learned")


class _LowBitQuantizer(LastValueQuantizer):
    """Shared arguments, variables and reshaping of the binary and ternary quantizers."""

    packed_bits = None  # bits a weight takes packed, set by each subclass

    def __init__(
        self,
        channel_axes: int = 1,
        per_axis: bool = True,
        scale: str = "mean",
        clip_value: float = 1.0,
        num_bits: int = 8,
        symmetric: bool = True,
        narrow_range: bool = True,
    ):
        # num_bits, symmetric and narrow_range exist for get_config round trips:
        # the codes always go on TFLite's symmetric int8 weight grid.
        name = type(self).__name__
        for key, value, wanted in (("num_bits", num_bits, 8), ("symmetric", symmetric, True)):
            if value != wanted or isinstance(value, bool) != isinstance(wanted, bool):
                raise ValueError(f"{name} puts its codes on the int8 weight grid. Received: {key}={value!r}")
        if narrow_range is not True:
            raise ValueError(f"{name} puts its codes on the int8 weight grid. Received: narrow_range={narrow_range!r}")
        super().__init__(num_bits=8, per_axis=per_axis, symmetric=True, narrow_range=True)
        if isinstance(channel_axes, bool) or channel_axes not in (0, 1, 2):
            raise ValueError(
                f"{name}: channel_axes must be 0 (one scale), 1 (Conv, Dense) or 2 (DepthwiseConv2D). "
                f"Received: channel_axes={channel_axes!r}"
            )
        if per_axis and channel_axes == 0:
            raise ValueError(f"{name}: a per-channel grid (per_axis=True) needs channel_axes of 1 or 2. Received: 0")
        if scale not in SCALES:
            raise ValueError(f"{name}: scale must be one of {', '.join(SCALES)}. Received: scale={scale!r}")
        if isinstance(clip_value, bool) or not isinstance(clip_value, (int, float)) or not clip_value > 0:
            raise ValueError(f"{name}: clip_value must be a number above 0. Received: clip_value={clip_value!r}")
        self.channel_axes = channel_axes
        self.scale = scale
        self.clip_value = float(clip_value)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "channel_axes": self.channel_axes,
            "scale": self.scale,
            "clip_value": self.clip_value,
        }

    def build(
        self, tensor_shape: Sequence[int | None], name: str, layer: keras.layers.Layer
    ) -> dict[str, keras.Variable]:
        tensor_shape = tuple(tensor_shape)
        if any(size is None for size in tensor_shape) or len(tensor_shape) < self.channel_axes:
            raise ValueError(
                f"{type(self).__name__}: {name!r} of layer {getattr(layer, 'name', layer)!r} needs a fully known "
                f"shape of rank {self.channel_axes} or more. Received: tensor_shape={tensor_shape!r}"
            )
        flat = self._flat_shape(tensor_shape)
        variables = super().build(flat, name, layer)
        needs_values = self.scale == "learned" or getattr(self, "preserve_sparsity", False)
        values = source_values(layer, name, tensor_shape, type(self).__name__) if needs_values else None
        if getattr(self, "preserve_sparsity", False):
            variables["sparsity_mask"] = layer.add_weight(
                name=f"{name}_sparsity_mask",
                shape=tensor_shape,
                initializer=constant_initializer((values != 0).astype(np.float32)),
                trainable=False,
                autocast=False,
            )
        if self.scale == "learned":
            start = ops.convert_to_numpy(self._computed_scale(np.reshape(values, flat).astype(np.float32)))
            variables["scale"] = layer.add_weight(
                name=f"{name}_scale",
                shape=start.shape,
                initializer=constant_initializer(start),
                trainable=True,
                autocast=False,
            )
        return variables

    def __call__(self, inputs: Any, training: bool | None, weights: dict[str, keras.Variable], **kwargs) -> Any:
        shape = tuple(inputs.shape)
        quantized = super().__call__(self._low_bit(inputs, weights), training, weights, **kwargs)
        return ops.reshape(quantized, shape)

    def range_of(self, inputs: Any, weights: dict[str, keras.Variable]) -> tuple[Any, Any]:
        return super().range_of(self._low_bit(inputs, weights), weights)

    def _low_bit(self, inputs, weights):
        """The codes times the scale, on the kernel viewed with one channel axis (or none)."""
        values = ops.convert_to_tensor(inputs)
        if "sparsity_mask" in weights:
            values = values * ops.cast(weights["sparsity_mask"].value, values.dtype)
        values = ops.reshape(values, self._flat_shape(tuple(values.shape)))
        scale = weights["scale"].value if "scale" in weights else None
        return self._codes_times_scale(values, scale)

    def _flat_shape(self, shape):
        if self.channel_axes == 2:
            return tuple(shape[:-2]) + (int(shape[-2]) * int(shape[-1]),)
        return tuple(shape)

    def _axis(self):
        return -1 if self.channel_axes else None

    def _computed_scale(self, values):
        raise NotImplementedError

    def _codes_times_scale(self, values, scale):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="kopt")
class BinaryWeightQuantizer(_LowBitQuantizer):
    """1-bit weights: ``alpha_c * sign(w)`` per output channel, on the int8 grid.

    Args:
        channel_axes: Trailing axes that index output channels: 1 (Conv, Dense),
            2 (DepthwiseConv2D), or 0 for one scale for the tensor.
        per_axis: One int8 range per channel (convolutions) or one for the
            tensor (Dense); ``True`` needs ``channel_axes`` of 1 or 2.
        scale: ``"mean"`` (XNOR-Net's mean ``|w|``, computed at every step) or
            ``"learned"`` (trainable, starting there).
        clip_value: Straight-through gradients pass where ``|w| <= clip_value``.
        num_bits: Always 8 (for ``get_config``).
        symmetric: Always ``True`` (for ``get_config``).
        narrow_range: Always ``True`` (for ``get_config``).

    Example:

    >>> import keras, numpy as np
    >>> quantizer = BinaryWeightQuantizer(channel_axes=0, per_axis=False)
    >>> ranges = quantizer.build((4,), "kernel", keras.layers.Layer())
    >>> values = quantizer(np.array([0.3, -0.1, 0.2, -0.2], "float32"), True, ranges)
    >>> sorted({round(float(v), 4) for v in values})
    [-0.2, 0.2]
    """

    packed_bits = 1

    def _computed_scale(self, values):
        return low_bit.binary_scale(values, axis=self._axis())

    def _codes_times_scale(self, values, scale):
        return low_bit.binarize(values, axis=self._axis(), scale=scale, clip_value=self.clip_value)


@keras.saving.register_keras_serializable(package="kopt")
class TernaryWeightQuantizer(_LowBitQuantizer):
    """Ternary weights: ``alpha_c * sign(w) * [|w| > delta_c]`` per output channel, on the int8 grid.

    Args:
        channel_axes: As :class:`BinaryWeightQuantizer`.
        per_axis: As :class:`BinaryWeightQuantizer`.
        scale: ``"mean"`` (TWN's mean ``|w|`` above the threshold, computed at
            every step) or ``"learned"`` (trainable, starting there).
        clip_value: As :class:`BinaryWeightQuantizer`.
        threshold_ratio: ``r`` in TWN's threshold ``delta_c = r * mean|w|``, in ``(0, 1)``.
        preserve_sparsity: Keep the zeros the weight has when wrapped (a pruned
            model): they stay exactly 0 and get no gradient.
        num_bits: Always 8 (for ``get_config``).
        symmetric: Always ``True`` (for ``get_config``).
        narrow_range: Always ``True`` (for ``get_config``).

    Example:

    >>> import keras, numpy as np
    >>> quantizer = TernaryWeightQuantizer(channel_axes=0, per_axis=False)
    >>> ranges = quantizer.build((4,), "kernel", keras.layers.Layer())
    >>> values = quantizer(np.array([0.9, -0.5, 0.1, 0.0], "float32"), True, ranges)
    >>> sorted({round(float(v), 4) for v in values})
    [-0.7, 0.0, 0.7]
    """

    packed_bits = 2

    def __init__(
        self,
        channel_axes: int = 1,
        per_axis: bool = True,
        scale: str = "mean",
        clip_value: float = 1.0,
        threshold_ratio: float = low_bit.TWN_THRESHOLD_RATIO,
        preserve_sparsity: bool = False,
        num_bits: int = 8,
        symmetric: bool = True,
        narrow_range: bool = True,
    ):
        super().__init__(
            channel_axes=channel_axes,
            per_axis=per_axis,
            scale=scale,
            clip_value=clip_value,
            num_bits=num_bits,
            symmetric=symmetric,
            narrow_range=narrow_range,
        )
        name = type(self).__name__
        if isinstance(threshold_ratio, bool) or not isinstance(threshold_ratio, (int, float)):
            raise ValueError(
                f"{name}: threshold_ratio must be in (0, 1). Received: threshold_ratio={threshold_ratio!r}"
            )
        if not 0.0 < threshold_ratio < 1.0:
            raise ValueError(
                f"{name}: threshold_ratio must be in (0, 1). Received: threshold_ratio={threshold_ratio!r}"
            )
        if not isinstance(preserve_sparsity, bool):
            raise ValueError(
                f"{name}: preserve_sparsity must be a bool. Received: preserve_sparsity={preserve_sparsity!r}"
            )
        self.threshold_ratio = float(threshold_ratio)
        self.preserve_sparsity = preserve_sparsity

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "threshold_ratio": self.threshold_ratio,
            "preserve_sparsity": self.preserve_sparsity,
        }

    def _computed_scale(self, values):
        return low_bit.ternary_scale(values, axis=self._axis(), threshold_ratio=self.threshold_ratio)

    def _codes_times_scale(self, values, scale):
        return low_bit.ternarize(
            values, axis=self._axis(), threshold_ratio=self.threshold_ratio, scale=scale, clip_value=self.clip_value
        )


@dataclasses.dataclass(frozen=True)
class LowBitBits(Bits):
    """:class:`~kopt.quantization.registry.Bits` whose weights are binary or ternary.

    Attributes:
        levels: 2 (binary) or 3 (ternary).
        scale: ``"mean"`` or ``"learned"``.
        clip_value: Where straight-through gradients stop.
        threshold_ratio: TWN's threshold ratio (ternary).
        preserve_sparsity: Keep the wrapped weights' zeros (ternary).

    Example:

    >>> bits = LowBitBits(levels=3)
    >>> type(bits.depthwise_quantizer()).__name__, bits.depthwise_quantizer().channel_axes
    ('TernaryWeightQuantizer', 2)
    >>> bits.dense_quantizer().channel_axes, bits.dense_quantizer().per_axis
    (1, False)
    """

    levels: int = 2
    scale: str = "mean"
    clip_value: float = 1.0
    threshold_ratio: float = low_bit.TWN_THRESHOLD_RATIO
    preserve_sparsity: bool = False

    def weight_quantizer(self, per_axis):
        return self._quantizer(channel_axes=1 if per_axis else 0, per_axis=per_axis)

    def depthwise_quantizer(self):
        return self._quantizer(channel_axes=2 if self.per_axis else 0, per_axis=self.per_axis)

    def dense_quantizer(self):
        # A scale per unit for the codes; the int8 grid stays per tensor (see the module docstring).
        return self._quantizer(channel_axes=1 if self.per_axis else 0, per_axis=False)

    def _quantizer(self, channel_axes, per_axis):
        common = {
            "channel_axes": channel_axes,
            "per_axis": per_axis,
            "scale": self.scale,
            "clip_value": self.clip_value,
        }
        if self.levels == 2:
            return BinaryWeightQuantizer(**common)
        return TernaryWeightQuantizer(
            **common, threshold_ratio=self.threshold_ratio, preserve_sparsity=self.preserve_sparsity
        )
