"""QuantizeConfig: which tensors of a layer are quantized, and by which quantizer.

The interface is tfmot's, so a config written for tfmot ports by changing imports:

* ``get_weights_and_quantizers(layer)``: ``[(variable, quantizer), ...]``;
* ``get_activations_and_quantizers(layer)``: ``[(activation, quantizer), ...]``;
* ``set_quantize_weights(layer, quantize_weights)``: optional in kopt. The wrapper
  substitutes the quantized values for the variables while the layer runs
  (``keras.StatelessScope``), so layers need no attribute surgery; a config may
  still override it, but kopt never calls it;
* ``set_quantize_activations(layer, quantize_activations)``: puts the
  quantization-aware activations in place (kopt restores the originals after each
  call, so the wrapped layer's config never changes);
* ``get_output_quantizers(layer)``: quantizers for the layer's outputs;
* ``output_shares_input_range(layer)``: optional, kopt only (default ``False``):
  whether the layer's inputs are quantized with its first output quantizer's
  range, for ops TFLite runs with one scale on input and output;
* ``get_config()``.
"""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import keras

from kopt.quantization import quantizers as quantizers_lib

__all__ = ["DefaultQuantizeConfig", "NoOpQuantizeConfig", "QuantizeConfig"]


class QuantizeConfig:
    """Base class of quantize configs; subclass it for a custom layer.

    Example:

    >>> import keras
    >>> from kopt.quantization.quantizers import LastValueQuantizer
    >>> class KernelOnly(QuantizeConfig):
    ...     def get_weights_and_quantizers(self, layer):
    ...         return [(layer.kernel, LastValueQuantizer(symmetric=True, narrow_range=True))]
    ...     def get_activations_and_quantizers(self, layer):
    ...         return []
    ...     def set_quantize_weights(self, layer, quantize_weights):
    ...         pass
    ...     def set_quantize_activations(self, layer, quantize_activations):
    ...         pass
    ...     def get_output_quantizers(self, layer):
    ...         return []
    ...     def get_config(self):
    ...         return {}
    >>> KernelOnly().get_output_quantizers(None)
    []
    """

    def get_weights_and_quantizers(
        self, layer: keras.layers.Layer
    ) -> list[tuple[keras.Variable, quantizers_lib.Quantizer]]:
        raise NotImplementedError(f"{type(self).__name__} must implement get_weights_and_quantizers()")

    def get_activations_and_quantizers(
        self, layer: keras.layers.Layer
    ) -> list[tuple[Callable[..., Any], quantizers_lib.Quantizer]]:
        raise NotImplementedError(f"{type(self).__name__} must implement get_activations_and_quantizers()")

    def set_quantize_weights(self, layer: keras.layers.Layer, quantize_weights: Sequence[Any]) -> None:
        """Unused by kopt (weights are substituted by the wrapper); kept for tfmot configs."""

    def set_quantize_activations(
        self, layer: keras.layers.Layer, quantize_activations: Sequence[Callable[..., Any]]
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement set_quantize_activations()")

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list[quantizers_lib.Quantizer]:
        raise NotImplementedError(f"{type(self).__name__} must implement get_output_quantizers()")

    def output_shares_input_range(self, layer: keras.layers.Layer) -> bool:
        """Whether the inputs are quantized with the first output quantizer's range.

        TFLite's int8 average pooling requires the same scale on its input and
        output, and the converter requantizes the input to the output's scale;
        quantizing the input with that range reproduces the clipping and rounding.
        """
        return False

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement get_config()")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "QuantizeConfig":
        return cls(**config)


@keras.saving.register_keras_serializable(package="kopt")
class NoOpQuantizeConfig(QuantizeConfig):
    """Quantizes nothing: the layer runs in float, e.g. to keep one layer unquantized.

    Example:

    >>> NoOpQuantizeConfig().get_weights_and_quantizers(None)
    []
    """

    def get_weights_and_quantizers(
        self, layer: keras.layers.Layer
    ) -> list[tuple[keras.Variable, quantizers_lib.Quantizer]]:
        return []

    def get_activations_and_quantizers(
        self, layer: keras.layers.Layer
    ) -> list[tuple[Callable[..., Any], quantizers_lib.Quantizer]]:
        return []

    def set_quantize_activations(
        self, layer: keras.layers.Layer, quantize_activations: Sequence[Callable[..., Any]]
    ) -> None:
        pass

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list[quantizers_lib.Quantizer]:
        return []

    def get_config(self) -> dict[str, Any]:
        return {}


@keras.saving.register_keras_serializable(package="kopt")
class DefaultQuantizeConfig(QuantizeConfig):
    """Quantizes named weight and activation attributes and, optionally, the output.

    This one class covers every built-in layer kopt supports; the schemes differ
    only in the quantizers they pass.

    Args:
        weight_attrs: Attribute names of the variables to quantize (``["kernel"]``;
            a dotted name reaches into a sublayer, ``"cell.kernel"``).
        weight_quantizer: The quantizer for those variables.
        activation_attrs: Attribute names of activation functions to quantize
            (``["activation"]``); their outputs, and for saturating activations
            such as sigmoid also their inputs, are quantized.
        activation_quantizer: The quantizer for activation outputs.
        quantize_output: Whether to quantize the layer's output (for layers
            without an activation attribute, such as ``Add``).
        output_quantizer: The quantizer for the output; defaults to
            ``activation_quantizer``.
        shared_input_range: Quantize the inputs with the output quantizer,
            whose range then tracks the inputs, and round the output onto the
            same grid (TFLite's average pooling keeps its input's scale).

    Example:

    >>> import keras
    >>> from kopt.quantization.quantizers import LastValueQuantizer, MovingAverageQuantizer
    >>> config = DefaultQuantizeConfig(["kernel"], LastValueQuantizer(), ["activation"], MovingAverageQuantizer())
    >>> layer = keras.layers.Dense(2, name="dense")
    >>> layer.build((None, 3))
    >>> [variable.path for variable, _ in config.get_weights_and_quantizers(layer)]
    ['dense/kernel']
    """

    def __init__(
        self,
        weight_attrs: Sequence[str] = (),
        weight_quantizer: quantizers_lib.Quantizer | dict[str, Any] | None = None,
        activation_attrs: Sequence[str] = (),
        activation_quantizer: quantizers_lib.Quantizer | dict[str, Any] | None = None,
        quantize_output: bool = False,
        output_quantizer: quantizers_lib.Quantizer | dict[str, Any] | None = None,
        shared_input_range: bool = False,
    ):
        self.weight_attrs = list(weight_attrs)
        self.activation_attrs = list(activation_attrs)
        self.quantize_output = bool(quantize_output)
        self.weight_quantizer = _quantizer(weight_quantizer, "weight_quantizer")
        self.activation_quantizer = _quantizer(activation_quantizer, "activation_quantizer")
        self.output_quantizer = _quantizer(output_quantizer, "output_quantizer") or self.activation_quantizer
        if self.weight_attrs and self.weight_quantizer is None:
            raise ValueError(
                f"weight_attrs={self.weight_attrs} needs a weight_quantizer. Received: weight_quantizer=None"
            )
        self.shared_input_range = bool(shared_input_range)
        if self.shared_input_range and not self.quantize_output:
            raise ValueError(
                "shared_input_range quantizes the inputs with the output's range and needs quantize_output=True. "
                "Received: quantize_output=False"
            )
        if (self.activation_attrs or self.quantize_output) and self.output_quantizer is None:
            raise ValueError(
                "Quantizing activations or outputs needs an activation_quantizer or output_quantizer. "
                "Received: activation_quantizer=None"
            )

    def get_weights_and_quantizers(
        self, layer: keras.layers.Layer
    ) -> list[tuple[keras.Variable, quantizers_lib.Quantizer]]:
        return [(_attribute(layer, name), self.weight_quantizer) for name in self.weight_attrs]

    def get_activations_and_quantizers(
        self, layer: keras.layers.Layer
    ) -> list[tuple[Callable[..., Any], quantizers_lib.Quantizer]]:
        return [(_attribute(layer, name), self.activation_quantizer) for name in self.activation_attrs]

    def set_quantize_activations(
        self, layer: keras.layers.Layer, quantize_activations: Sequence[Callable[..., Any]]
    ) -> None:
        if len(quantize_activations) != len(self.activation_attrs):
            raise ValueError(
                f"Expected {len(self.activation_attrs)} activations for layer {layer.name!r}. "
                f"Received: {len(quantize_activations)}"
            )
        for name, activation in zip(self.activation_attrs, quantize_activations):
            setattr(layer, name, activation)

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list[quantizers_lib.Quantizer]:
        return [self.output_quantizer] if self.quantize_output else []

    def output_shares_input_range(self, layer: keras.layers.Layer) -> bool:
        return self.shared_input_range

    def get_config(self) -> dict[str, Any]:
        return {
            "weight_attrs": self.weight_attrs,
            "weight_quantizer": _serialize(self.weight_quantizer),
            "activation_attrs": self.activation_attrs,
            "activation_quantizer": _serialize(self.activation_quantizer),
            "quantize_output": self.quantize_output,
            "output_quantizer": _serialize(self.output_quantizer),
            "shared_input_range": self.shared_input_range,
        }


def _quantizer(value, name):
    if value is None or isinstance(value, quantizers_lib.Quantizer):
        return value
    if isinstance(value, dict):
        return keras.saving.deserialize_keras_object(value)
    raise ValueError(f"{name} must be a kopt.quantization Quantizer. Received: {name}={value!r}")


def _serialize(quantizer):
    return None if quantizer is None else keras.saving.serialize_keras_object(quantizer)


def _attribute(layer, name):
    # A dotted name reaches into a sublayer: "cell.kernel" of an LSTM.
    value = layer
    for part in name.split("."):
        if not hasattr(value, part):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) has no attribute {name!r} named in its QuantizeConfig."
            )
        value = getattr(value, part)
    return value
