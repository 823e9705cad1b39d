"""QuantizeScheme: the base class of the schemes ``quantize_apply`` takes.

A scheme chooses bit widths (its :class:`~kopt.quantization.registry.Bits`),
whether BatchNormalization is folded, whether activations are quantized at all,
and the ``tflite_export.convert`` mode its models convert with. It may also give
some weighted layers other bits than the rest (:meth:`QuantizeScheme.layer_bits`),
as the binary and ternary schemes keep the first and last layer at 8 bits.
"""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from kopt.quantization.annotate import QuantizeAnnotate
from kopt.quantization.registry import Bits
from kopt.quantization.registry import has_kernel

__all__ = ["QuantizeScheme", "bits_by_layer"]


class QuantizeScheme:
    """Base class: a scheme has ``bits``, ``fold_batch_norm``, ``quantize_activations`` and an ``export_mode``.

    ``export_mode`` is the ``tflite_export.convert`` mode its models convert with.
    With ``quantize_activations = False`` only weights are quantized: no input
    gets a :class:`~kopt.quantization.QuantizeLayer` and no layer an activation
    range.

    Example:

    >>> class Mine(QuantizeScheme):
    ...     pass
    >>> Mine().bits.weights, Mine().layer_bits(["conv", "dense"])
    (8, {})
    """

    bits = Bits()
    fold_batch_norm = True
    quantize_activations = True
    export_mode = "int8"

    def layer_bits(self, weighted_layers: Sequence[str]) -> dict[str, Bits]:
        """Bits for some layers instead of ``bits``, by name.

        Args:
            weighted_layers: The names of the layers with a kernel that take the
                scheme's built-in configs (no custom ``QuantizeConfig``), in the
                model's graph order.

        Returns:
            ``{layer name: Bits}``; layers left out use ``bits``.
        """
        del weighted_layers
        return {}

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "QuantizeScheme":
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


def bits_by_layer(scheme: QuantizeScheme, layers: dict[str, Any]) -> Callable[[str], Bits]:
    """The bits ``scheme`` gives each layer: its ``layer_bits`` where it names one, else its ``bits``.

    Args:
        scheme: A :class:`QuantizeScheme`.
        layers: ``{name: layer}`` in graph order; ``layer_bits`` sees the names
            of the :class:`~kopt.quantization.QuantizeAnnotate` layers with a
            kernel and without a ``QuantizeConfig`` of their own.

    Returns:
        A function from a layer's name to its :class:`Bits`.

    Example:

    >>> import keras
    >>> bits_of = bits_by_layer(QuantizeScheme(), {"dense": QuantizeAnnotate(keras.layers.Dense(2))})
    >>> bits_of("dense") == QuantizeScheme.bits
    True
    """
    weighted = [
        name
        for name, layer in layers.items()
        if isinstance(layer, QuantizeAnnotate) and layer.quantize_config is None and has_kernel(layer.layer)
    ]
    overrides = scheme.layer_bits(weighted)
    return lambda name: overrides.get(name, scheme.bits)
