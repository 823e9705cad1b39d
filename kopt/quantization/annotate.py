"""QuantizeAnnotate: marks a layer for ``quantize_apply`` without changing what it computes."""

from typing import Any

import keras

from kopt.quantization import quantize_config as config_lib
from kopt.utils.substitution import forward_input_shape
from kopt.utils.substitution import symbolic_inputs
from tflite_export.cloning import copy_unshared

__all__ = ["QuantizeAnnotate", "copy_annotation", "require_float32"]


@keras.saving.register_keras_serializable(package="kopt")
class QuantizeAnnotate(keras.layers.Wrapper):
    """Marks ``layer`` to be quantized by ``quantize_apply``, optionally with a config.

    The annotated layer still runs in float; annotation only records intent, so an
    annotated model can be built, saved and loaded before it is quantized.

    Args:
        layer: The layer to annotate.
        quantize_config: A :class:`kopt.quantization.QuantizeConfig`, or ``None`` for
            the scheme's built-in handling of the layer.
        **kwargs: Base layer arguments.

    Example:

    >>> import keras, numpy as np
    >>> annotated = QuantizeAnnotate(keras.layers.Dense(2))
    >>> annotated(np.ones((1, 3), "float32")).shape
    TensorShape([1, 2])
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        quantize_config: config_lib.QuantizeConfig | dict[str, Any] | None = None,
        **kwargs,
    ):
        if not isinstance(layer, keras.layers.Layer) or isinstance(layer, keras.Model):
            raise ValueError(
                "quantize_annotate_layer annotates a keras layer (use quantize_annotate_model for a model). "
                f"Received: to_annotate={layer!r}"
            )
        if isinstance(layer, QuantizeAnnotate):
            raise ValueError(f"Layer {layer.name!r} is already annotated for quantization.")
        if isinstance(quantize_config, dict):
            quantize_config = keras.saving.deserialize_keras_object(quantize_config)
        if quantize_config is not None and not isinstance(quantize_config, config_lib.QuantizeConfig):
            raise ValueError(
                f"quantize_config of layer {layer.name!r} must be a kopt.quantization.QuantizeConfig or None. "
                f"Received: quantize_config={quantize_config!r}"
            )
        kwargs.setdefault("name", f"quant_annotate_{layer.name}")
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        self.quantize_config = quantize_config
        forward_input_shape(self, layer)

    def __call__(self, *args, **kwargs) -> Any:
        if not self.layer.built:
            # As QuantizeWrapper: built outside this wrapper's name scope, so the
            # variable paths are those a loaded model gets.
            self.layer(*symbolic_inputs(args), **symbolic_inputs(kwargs))
        return super().__call__(*args, **kwargs)

    def call(self, inputs: Any, *args, **kwargs) -> Any:
        return self.layer(inputs, *args, **kwargs)

    def compute_output_shape(self, *args, **kwargs) -> Any:
        return self.layer.compute_output_shape(*args, **kwargs)

    def compute_output_spec(self, *args, **kwargs) -> Any:
        return self.layer.compute_output_spec(*args, **kwargs)

    def get_config(self) -> dict[str, Any]:
        quantize_config = None
        if self.quantize_config is not None:
            quantize_config = keras.saving.serialize_keras_object(self.quantize_config)
        return {**super().get_config(), "quantize_config": quantize_config}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> "QuantizeAnnotate":
        config = dict(config)
        layer = keras.saving.deserialize_keras_object(config.pop("layer"), custom_objects=custom_objects)
        return cls(layer, **config)


def require_float32(model: keras.Model) -> None:
    """Raises ``ValueError`` naming the annotated layers of ``model`` that compute in reduced precision."""
    # bfloat16 keeps 8 significant bits, too few for an 8-bit grid away from 0,
    # float16 rounds accumulations the integer kernels do exactly, and the TFLite
    # converter cannot lower fake quantization between float16 ops.
    reduced = [
        layer.layer
        for layer in model.layers
        if isinstance(layer, QuantizeAnnotate) and layer.layer.dtype_policy.compute_dtype != "float32"
    ]
    if reduced:
        names = ", ".join(f"{layer.name!r} (dtype policy {layer.dtype_policy.name!r})" for layer in reduced[:5])
        more = f" and {len(reduced) - 5} more" if len(reduced) > 5 else ""
        raise ValueError(
            f"Quantization-aware training computes in float32, but layer(s) {names}{more} compute in "
            f"{reduced[0].dtype_policy.compute_dtype}: reduced precision cannot represent the integer grids, "
            "and fake quantization between float16 ops cannot be converted to TFLite. Build the model under "
            "keras.mixed_precision.set_global_policy('float32') (copy trained weights with set_weights) "
            "before quantizing it."
        )


def copy_annotation(layer: QuantizeAnnotate) -> QuantizeAnnotate:
    """A new annotation of a copy of ``layer``'s layer, with ``layer``'s config object and name.

    The config object is kept as it is: rebuilding the wrapper from its config would
    look custom layer and config classes up by name, which needs ``quantize_scope``.
    """
    return QuantizeAnnotate(copy_unshared(layer.layer), quantize_config=layer.quantize_config, name=layer.name)
