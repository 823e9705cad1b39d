"""Quantizers: small serializable objects that pick a range and fake-quantize a tensor.

A quantizer owns no variables itself. ``build(tensor_shape, name, layer)`` creates
its range variables on the layer that uses it (so they are saved, loaded and
distributed with that layer) and returns them as a dict; ``__call__(inputs,
training, weights)`` fake-quantizes ``inputs`` with those variables, updating them
first when the quantizer tracks ranges. The names and signatures follow tfmot's
``Quantizer`` so custom quantizers port by changing imports. kopt's quantizers
also take ``ties=`` (see :func:`kopt.quantization.fake_quant.fake_quant`), which
``QuantizeLayer`` sets to round model inputs the way the runtime does.

Ranges:

* :class:`LastValueQuantizer`: the range of the tensor right now (weights).
* :class:`MovingAverageQuantizer`: an exponential moving average of batch ranges
  during training, frozen in inference (activations). The first batch sets the
  range outright, so short fine-tunes do not carry an arbitrary initial range.
* :class:`AllValuesQuantizer`: the widest range seen in training.
* :class:`FixedRangeQuantizer`: a constant range (e.g. softmax outputs in ``[0, 1]``).

Range variables are created with ``aggregation="mean"``: under
``tf.distribute.MirroredStrategy`` each replica's update is averaged into the one
mirrored value, so all replicas quantize with the same range.
"""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from kopt.quantization.fake_quant import calibration_active
from kopt.quantization.fake_quant import fake_quant

__all__ = ["AllValuesQuantizer", "FixedRangeQuantizer", "LastValueQuantizer", "MovingAverageQuantizer", "Quantizer"]


class Quantizer:
    """Base class: subclasses implement ``build``, ``__call__`` and ``get_config``."""

    def build(
        self, tensor_shape: Sequence[int | None], name: str, layer: keras.layers.Layer
    ) -> dict[str, keras.Variable]:
        """Creates range variables on ``layer``; returns them as a dict."""
        raise NotImplementedError(f"{type(self).__name__} must implement build()")

    def __call__(self, inputs: Any, training: bool | None, weights: dict[str, keras.Variable], **kwargs) -> Any:
        """Returns ``inputs`` fake-quantized with the variables ``weights``."""
        raise NotImplementedError(f"{type(self).__name__} must implement __call__()")

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement get_config()")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Quantizer":
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __ne__(self, other):
        return not self == other

    __hash__ = None


class _RangeQuantizer(Quantizer):
    """Shared arguments and range arithmetic of the range-tracking quantizers."""

    def __init__(self, num_bits: int = 8, per_axis: bool = False, symmetric: bool = False, narrow_range: bool = False):
        if not isinstance(num_bits, int) or isinstance(num_bits, bool) or not 2 <= num_bits <= 16:
            raise ValueError(
                f"{type(self).__name__}: num_bits must be an integer from 2 to 16. Received: num_bits={num_bits!r}"
            )
        for name, value in (("per_axis", per_axis), ("symmetric", symmetric), ("narrow_range", narrow_range)):
            if not isinstance(value, bool):
                raise ValueError(f"{type(self).__name__}: {name} must be a bool. Received: {name}={value!r}")
        self.num_bits = num_bits
        self.per_axis = per_axis
        self.symmetric = symmetric
        self.narrow_range = narrow_range

    def get_config(self) -> dict[str, Any]:
        return {
            "num_bits": self.num_bits,
            "per_axis": self.per_axis,
            "symmetric": self.symmetric,
            "narrow_range": self.narrow_range,
        }

    def _range_shape(self, tensor_shape):
        if not self.per_axis:
            return ()
        if not tensor_shape or tensor_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__}: per_axis quantization needs a known last dimension. "
                f"Received: tensor_shape={tensor_shape!r}"
            )
        return (int(tensor_shape[-1]),)

    def _add_range(self, tensor_shape, name, layer, initial_min, initial_max):
        shape = self._range_shape(tensor_shape)
        variables = {}
        for suffix, value in (("min", initial_min), ("max", initial_max)):
            variables[suffix] = layer.add_weight(
                name=f"{name}_{suffix}",
                shape=shape,
                initializer=keras.initializers.Constant(value),
                trainable=False,
                aggregation="mean",
                autocast=False,
            )
        return variables

    def _batch_range(self, inputs):
        # A range is a statistic, not a path for gradients: without this the
        # extreme elements would get gradient through the range of every clipped
        # one, and the backward pass would not be the straight-through estimator.
        values = ops.stop_gradient(ops.cast(inputs, "float32"))
        rank = len(values.shape)
        axes = tuple(range(rank - 1)) if self.per_axis else None
        low = ops.min(values, axis=axes)
        high = ops.max(values, axis=axes)
        if self.symmetric:
            magnitude = _nonempty_magnitude(ops.maximum(ops.abs(low), ops.abs(high)))
            return -magnitude, magnitude
        return low, high

    def _quantize(self, inputs, low, high, ties="up"):
        return fake_quant(
            inputs,
            low,
            high,
            num_bits=self.num_bits,
            narrow_range=self.narrow_range,
            per_channel=self.per_axis,
            ties=ties,
        )


def _nonempty_magnitude(magnitude):
    """Gives channels that hold only zeros the widest magnitude of the tensor.

    Pruning can zero a whole output channel. Its symmetric range would be
    ``[-0.0, 0.0]``, which has no scale: TFLite would then derive a non-zero zero
    point for the channel and refuse the file, and a tiny stand-in scale would make
    the channel's int32 bias (quantized with ``input_scale * weight_scale``)
    overflow. The zeros are exact on any grid, so the channel borrows the scale its
    neighbours use, or 1.0 when the whole tensor is zero. A channel counts as empty
    below ``_EMPTY_MAGNITUDE``, where its values are far under any weight grid step.
    """
    empty = ops.less(magnitude, _EMPTY_MAGNITUDE)
    widest = ops.max(magnitude)
    fallback = ops.where(ops.less(widest, _EMPTY_MAGNITUDE), ops.ones_like(widest), widest)
    return ops.where(empty, fallback, magnitude)


_EMPTY_MAGNITUDE = 1e-6


@keras.saving.register_keras_serializable(package="kopt")
class LastValueQuantizer(_RangeQuantizer):
    """Quantizes with the tensor's current range; the default for weights.

    The range is recomputed from the values at every call, in training and in
    inference, and stored so exported files carry it.

    Args:
        num_bits: Bits of the integer grid, 2 to 16.
        per_axis: One range per slice of the last axis (per-channel weights).
        symmetric: Use ``[-max|x|, max|x|]``, which puts the zero point at 0.
        narrow_range: Leave out the lowest grid value; with ``symmetric`` and 8 bits
            this gives TFLite's ``[-127, 127]`` weight grid.

    Example:

    >>> import numpy as np, keras
    >>> layer = keras.layers.Layer()
    >>> quantizer = LastValueQuantizer(num_bits=8, symmetric=True, narrow_range=True)
    >>> variables = quantizer.build((3,), "kernel", layer)
    >>> values = quantizer(np.array([-1.0, 0.5, 0.2], "float32"), True, variables)
    >>> float(variables["max"].numpy())
    1.0
    """

    def build(
        self, tensor_shape: Sequence[int | None], name: str, layer: keras.layers.Layer
    ) -> dict[str, keras.Variable]:
        return self._add_range(tensor_shape, name, layer, -6.0, 6.0)

    def range_of(self, inputs: Any, weights: dict[str, keras.Variable]) -> tuple[Any, Any]:
        """The ``(min, max)`` a call puts ``inputs`` on, before the range is sanitized."""
        del weights
        return self._batch_range(inputs)

    def __call__(self, inputs: Any, training: bool | None, weights: dict[str, keras.Variable], **kwargs) -> Any:
        low, high = self._batch_range(inputs)
        if training:
            # Stored for inspection and export; inference recomputes the same
            # values from the weights and writes nothing.
            weights["min"].assign(low)
            weights["max"].assign(high)
        return self._quantize(inputs, low, high, kwargs.get("ties", "up"))


@keras.saving.register_keras_serializable(package="kopt")
class MovingAverageQuantizer(_RangeQuantizer):
    """Quantizes with an exponential moving average of batch ranges; for activations.

    In training, ``range = ema_decay * range + (1 - ema_decay) * batch_range`` (the
    first batch sets it outright) and the updated range quantizes the batch; in
    inference the stored range is used unchanged.

    Args:
        num_bits: Bits of the integer grid, 2 to 16.
        per_axis: One range per slice of the last axis.
        symmetric: Use a range symmetric around 0 (int16 activations).
        narrow_range: Leave out the lowest grid value.
        ema_decay: Weight of the previous range, in ``[0, 1)``.

    Example:

    >>> import numpy as np, keras
    >>> layer = keras.layers.Layer()
    >>> quantizer = MovingAverageQuantizer(ema_decay=0.5)
    >>> variables = quantizer.build((), "activation", layer)
    >>> _ = quantizer(np.array([0.0, 4.0], "float32"), True, variables)
    >>> _ = quantizer(np.array([0.0, 2.0], "float32"), True, variables)
    >>> float(variables["max"].numpy())
    3.0
    """

    def __init__(
        self,
        num_bits: int = 8,
        per_axis: bool = False,
        symmetric: bool = False,
        narrow_range: bool = False,
        ema_decay: float = 0.999,
    ):
        super().__init__(num_bits=num_bits, per_axis=per_axis, symmetric=symmetric, narrow_range=narrow_range)
        if isinstance(ema_decay, bool) or not isinstance(ema_decay, (int, float)) or not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"MovingAverageQuantizer: ema_decay must be in [0, 1). Received: ema_decay={ema_decay!r}")
        self.ema_decay = float(ema_decay)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ema_decay": self.ema_decay}

    def build(
        self, tensor_shape: Sequence[int | None], name: str, layer: keras.layers.Layer
    ) -> dict[str, keras.Variable]:
        # An empty range marks "not seen a batch yet".
        return self._add_range(tensor_shape, name, layer, 0.0, 0.0)

    def __call__(self, inputs: Any, training: bool | None, weights: dict[str, keras.Variable], **kwargs) -> Any:
        calibrating = calibration_active()
        if not training and not calibrating:
            return self._quantize(inputs, weights["min"], weights["max"], kwargs.get("ties", "up"))
        low, high = self._batch_range(inputs)
        seen = ops.greater(weights["max"] - weights["min"], 0.0)
        if calibrating:  # post-training calibration keeps the widest range seen (0 is always in it)
            low = ops.minimum(weights["min"], low)
            high = ops.maximum(weights["max"], high)
        else:
            low = ops.where(seen, self.ema_decay * weights["min"] + (1.0 - self.ema_decay) * low, low)
            high = ops.where(seen, self.ema_decay * weights["max"] + (1.0 - self.ema_decay) * high, high)
        weights["min"].assign(low)
        weights["max"].assign(high)
        return self._quantize(inputs, low, high, kwargs.get("ties", "up"))


@keras.saving.register_keras_serializable(package="kopt")
class AllValuesQuantizer(_RangeQuantizer):
    """Quantizes with the widest range seen in training (calibration-style).

    Args:
        num_bits: Bits of the integer grid, 2 to 16.
        per_axis: One range per slice of the last axis.
        symmetric: Use a range symmetric around 0.
        narrow_range: Leave out the lowest grid value.

    Example:

    >>> import numpy as np, keras
    >>> layer = keras.layers.Layer()
    >>> quantizer = AllValuesQuantizer()
    >>> variables = quantizer.build((), "activation", layer)
    >>> _ = quantizer(np.array([-1.0, 4.0], "float32"), True, variables)
    >>> _ = quantizer(np.array([0.0, 2.0], "float32"), True, variables)
    >>> float(variables["min"].numpy()), float(variables["max"].numpy())
    (-1.0, 4.0)
    """

    def build(
        self, tensor_shape: Sequence[int | None], name: str, layer: keras.layers.Layer
    ) -> dict[str, keras.Variable]:
        return self._add_range(tensor_shape, name, layer, 0.0, 0.0)

    def __call__(self, inputs: Any, training: bool | None, weights: dict[str, keras.Variable], **kwargs) -> Any:
        if not training and not calibration_active():
            return self._quantize(inputs, weights["min"], weights["max"], kwargs.get("ties", "up"))
        low, high = self._batch_range(inputs)
        low = ops.minimum(weights["min"], low)
        high = ops.maximum(weights["max"], high)
        weights["min"].assign(low)
        weights["max"].assign(high)
        return self._quantize(inputs, low, high, kwargs.get("ties", "up"))


@keras.saving.register_keras_serializable(package="kopt")
class FixedRangeQuantizer(Quantizer):
    """Quantizes with a constant range, e.g. ``[0, 1]`` for softmax outputs.

    Args:
        num_bits: Bits of the integer grid, 2 to 16.
        init_min: Lower end of the range; at most 0.
        init_max: Upper end of the range; greater than ``init_min`` and at least 0.
        narrow_range: Leave out the lowest grid value.

    Example:

    >>> import numpy as np
    >>> quantizer = FixedRangeQuantizer(init_min=0.0, init_max=1.0)
    >>> values = quantizer(np.array([1.5, 0.5], "float32"), True, quantizer.build((2,), "x", None))
    >>> round(float(values[0]), 3)
    1.0
    """

    def __init__(self, num_bits: int = 8, init_min: float = -6.0, init_max: float = 6.0, narrow_range: bool = False):
        if not isinstance(num_bits, int) or isinstance(num_bits, bool) or not 2 <= num_bits <= 16:
            raise ValueError(
                f"FixedRangeQuantizer: num_bits must be an integer from 2 to 16. Received: num_bits={num_bits!r}"
            )
        if not init_min <= 0.0 <= init_max or init_min >= init_max:
            raise ValueError(
                "FixedRangeQuantizer: the range must contain 0 and have init_min < init_max. "
                f"Received: init_min={init_min!r}, init_max={init_max!r}"
            )
        self.num_bits = num_bits
        self.init_min = float(init_min)
        self.init_max = float(init_max)
        self.narrow_range = bool(narrow_range)

    def get_config(self) -> dict[str, Any]:
        return {
            "num_bits": self.num_bits,
            "init_min": self.init_min,
            "init_max": self.init_max,
            "narrow_range": self.narrow_range,
        }

    def build(
        self, tensor_shape: Sequence[int | None], name: str, layer: keras.layers.Layer | None
    ) -> dict[str, keras.Variable]:
        return {}

    def __call__(self, inputs: Any, training: bool | None, weights: dict[str, keras.Variable], **kwargs) -> Any:
        return fake_quant(
            inputs,
            self.init_min,
            self.init_max,
            num_bits=self.num_bits,
            narrow_range=self.narrow_range,
            ties=kwargs.get("ties", "up"),
        )
