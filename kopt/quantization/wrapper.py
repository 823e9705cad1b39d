"""QuantizeWrapper and QuantizeLayer: the layers a quantization-aware model is made of.

``QuantizeWrapper`` runs the wrapped layer with its weights fake-quantized: a
``keras.StatelessScope`` maps each weight variable to its quantized value while
the layer runs, so any layer works without attribute surgery and the gradient
reaches the float weights through the straight-through estimator. Activations
named by the config are swapped for quantization-aware ones for the duration of
the call, and outputs are quantized last. Range variables are non-trainable
variables of the wrapper, so they are saved with the model and resume training.

``QuantizeLayer`` quantizes a float tensor entering the quantized part of the
model, such as the model input; its range becomes the input scale of the TFLite
file.
"""


import weakref

import keras

from kopt.quantization import activations as activations_lib
from kopt.quantization import bias as bias_lib
from kopt.quantization import fake_quant as fake_quant_lib
from kopt.quantization import normalization as normalization_lib
from kopt.quantization import quantize_config as config_lib
from kopt.quantization import quantizers as quantizers_lib
from kopt.utils.substitution import SubstitutingWrapper

__all__ = ["QuantizeLayer", "QuantizeWrapper"]


@keras.saving.register_keras_serializable(package="kopt")
class QuantizeWrapper(SubstitutingWrapper):
    """Simulates integer inference of ``layer`` during training.

    Prefer :func:`kopt.quantization.quantize_model`, which wraps a whole model
    with the configs of a scheme.

    Args:
        layer: The layer to quantize.
        quantize_config: A :class:`kopt.quantization.QuantizeConfig` saying which
            weights, activations and outputs to quantize, and how.
        **kwargs: Base layer arguments (``name``...).

    Example:

    >>> import keras, numpy as np
    >>> from kopt.quantization import DefaultQuantizeConfig, LastValueQuantizer, MovingAverageQuantizer
    >>> config = DefaultQuantizeConfig(["kernel"], LastValueQuantizer(symmetric=True, narrow_range=True),
    ...                                ["activation"], MovingAverageQuantizer())
    >>> wrapper = QuantizeWrapper(keras.layers.Dense(3, activation="relu"), config)
    >>> wrapper(np.ones((2, 4), "float32"), training=True).shape
    TensorShape([2, 3])
    """

    def __init__(self, layer, quantize_config, **kwargs):
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(f"QuantizeWrapper wraps a keras layer. Received: layer={layer!r}")
        if isinstance(layer, keras.Model):
            raise ValueError(
                "QuantizeWrapper wraps layers, not models; use kopt.quantization.quantize_model(model). "
                f"Received: layer={layer.name!r} ({type(layer).__name__})"
            )
        if isinstance(layer, QuantizeWrapper):
            raise ValueError(f"Layer {layer.name!r} is already wrapped by QuantizeWrapper.")
        if isinstance(quantize_config, dict):
            quantize_config = keras.saving.deserialize_keras_object(quantize_config)
        if not isinstance(quantize_config, config_lib.QuantizeConfig):
            raise ValueError(
                f"quantize_config of layer {layer.name!r} must be a kopt.quantization.QuantizeConfig. "
                f"Received: quantize_config={quantize_config!r}"
            )
        kwargs.setdefault("name", f"quant_{layer.name}")
        kwargs.setdefault("dtype", layer.dtype_policy)
        kwargs["autocast"] = False
        super().__init__(layer, **kwargs)
        self.quantize_config = quantize_config
        # The layer whose quantizer gives this one's input its grid (see __call__);
        # a weak reference, so Keras does not track it as a sublayer.
        self._input_source = None

    def __call__(self, *args, **kwargs):
        # A symbolic call (building the model, or loading it) shows where the input
        # comes from: the bias is rounded on the grid input_scale * weight_scale.
        if args and isinstance(args[0], keras.KerasTensor):
            source = bias_lib.range_source(args[0])
            known = self._input_source
            if known is None:
                self._input_source = weakref.ref(source) if source is not None else False
            elif known is not False and known() is not source:
                self._input_source = False  # a shared layer reading differently quantized inputs
        return super().__call__(*args, **kwargs)

    def output_range(self):
        """``(quantizer, range variables)`` that put this layer's output on its grid, or ``None``."""
        config = self.quantize_config
        output_quantizers = config.get_output_quantizers(self.layer)
        if output_quantizers:
            return output_quantizers[-1], self._output_ranges[-1]
        activations = config.get_activations_and_quantizers(self.layer)
        if activations and self._activation_ranges:
            return activations[-1][1], self._activation_ranges[-1][1]
        return None

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        config = self.quantize_config
        self._weight_ranges = [
            quantizer.build(tuple(variable.shape), _short_name(self.layer, variable), self)
            for variable, quantizer in config.get_weights_and_quantizers(self.layer)
        ]
        self._activation_ranges = []
        for index, (activation, quantizer) in enumerate(config.get_activations_and_quantizers(self.layer)):
            name = f"activation_{index}" if index else "activation"
            input_ranges = None
            if activations_lib.quantizes_input(activation):
                input_ranges = quantizer.build((), f"{name}_input", self)
            self._activation_ranges.append((input_ranges, quantizer.build((), f"{name}_output", self)))
        self._output_ranges = [
            quantizer.build((), f"output_{index}", self)
            for index, quantizer in enumerate(config.get_output_quantizers(self.layer))
        ]
        self.built = True

    def call(self, inputs, *args, training=None, **kwargs):
        config = self.quantize_config
        output_quantizers = list(zip(config.get_output_quantizers(self.layer), self._output_ranges))
        shared = bool(output_quantizers) and config.output_shares_input_range(self.layer)
        source_range = self._source_range() if shared else None
        if source_range is not None:
            # The input's own grid, read from its producer's range: the file needs
            # the very same scale on both sides (average pooling), and two ranges
            # tracked apart differ in the last bits, which the converter rejects.
            # The inputs are already on that grid; the output is rounded onto it.
            output_quantizers[0] = source_range
        elif shared and not fake_quant_lib.lowering_active():
            # The range tracks the inputs and the output is rounded onto the same
            # grid: TFLite requantizes the input to the output's scale. The
            # converter inserts that requantization itself, and fails on two
            # fake-quant ops in a row, so the exported graph leaves it out.
            quantizer, ranges = output_quantizers[0]
            inputs = keras.tree.map_structure(lambda tensor: quantizer(tensor, training, ranges), inputs)
        weights_and_quantizers = config.get_weights_and_quantizers(self.layer)
        quantized = {
            id(variable): quantizer(variable.value, training, ranges)
            for (variable, quantizer), ranges in zip(weights_and_quantizers, self._weight_ranges)
        }
        self._quantize_bias(quantized, weights_and_quantizers)
        activations = config.get_activations_and_quantizers(self.layer)
        aware = [
            activations_lib.QuantizeAwareActivation(activation, quantizer, input_ranges, output_ranges, training)
            for (activation, quantizer), (input_ranges, output_ranges) in zip(activations, self._activation_ranges)
        ]
        # Activation ranges are updated inside the wrapped layer's call.
        activation_ranges = [v for pair in self._activation_ranges for d in pair if d for v in d.values()]
        if aware:
            config.set_quantize_activations(self.layer, aware)
        mean_grid = self._layer_norm_grid()
        if mean_grid is not None:
            outputs = self._layer_norm_on_grid(inputs, *mean_grid)
            for quantizer, ranges in output_quantizers:
                outputs = quantizer(outputs, training, ranges)
            return outputs
        leading = _leading_shape(self.layer, inputs)
        if leading is not None:
            # A Dense on (batch, steps, features) becomes a reshape, a MatMul and a
            # BiasAdd after it, which the converter cannot fuse into one int8
            # FULLY_CONNECTED; on the 2-D view it can. Same values either way.
            inputs = keras.ops.reshape(inputs, (-1, inputs.shape[-1]))
        try:
            outputs, updates = self.run_with_values(
                quantized, inputs, *args, training=training, extra_variables=activation_ranges, **kwargs
            )
            if leading is not None:
                outputs = keras.ops.reshape(outputs, leading + (outputs.shape[-1],))
        finally:
            if aware:
                config.set_quantize_activations(self.layer, [activation for activation, _ in activations])
        # Assigned once the original activations are back: assigning with the
        # quantizing ones installed made MirroredStrategy runs drift from
        # one-device runs (tests/quantization/test_distributed.py).
        self.apply_updates(updates)
        for index, (quantizer, ranges) in enumerate(output_quantizers):
            outputs = quantizer(outputs, False if shared and index == 0 else training, ranges)
        return outputs

    def _layer_norm_grid(self):
        """``(quantizer, ranges)`` of a LayerNormalization's input, whose grid its mean is rounded to, or ``None``."""
        layer = self.layer
        if not isinstance(layer, keras.layers.LayerNormalization) or layer.rms_scaling:
            return None
        if fake_quant_lib.lowering_active():
            return None  # the converter rounds the mean itself
        return self._source_range()

    def _layer_norm_on_grid(self, inputs, quantizer, ranges):
        """LayerNormalization with its mean on the input's grid (see kopt.quantization.normalization)."""
        layer = self.layer
        return normalization_lib.layer_norm_on_grid(
            inputs,
            layer.gamma.value if layer.scale else None,
            layer.beta.value if layer.center else None,
            axis=layer.axis,
            epsilon=layer.epsilon,
            round_mean=lambda mean: quantizer(mean, False, ranges),
        )

    def _source_range(self):
        """``(quantizer, range variables)`` of the layer that quantized this one's input, or ``None``."""
        source = self._input_source() if self._input_source else None
        if isinstance(source, QuantizeWrapper):
            return source.output_range()
        if isinstance(source, QuantizeLayer):
            return source.quantizer, source._ranges
        return None

    def _quantize_bias(self, quantized, weights_and_quantizers):
        """Adds the bias, rounded as the file stores it, to ``quantized`` (when it can be known)."""
        bias = getattr(self.layer, "bias", None)
        source = self._input_source() if self._input_source else None
        if bias is None or source is None or fake_quant_lib.lowering_active():
            return  # The converter rounds the float bias itself, on the same grid.
        kernel = getattr(self.layer, "kernel", None)
        if kernel is None or id(kernel) not in quantized or id(bias) in quantized:
            return
        quantizer = next(q for variable, q in weights_and_quantizers if variable is kernel)
        weight_scale = bias_lib.weight_scale(quantized[id(kernel)], quantizer)
        producer = self._source_range()
        input_scale = bias_lib.activation_scale(*producer) if producer is not None else None
        if weight_scale is None or input_scale is None or tuple(weight_scale.shape) not in ((), tuple(bias.shape)):
            return
        quantized[id(bias)] = bias_lib.fake_quant_bias(bias.value, input_scale * weight_scale)

    def quantized_weights(self):
        """The wrapped layer's weights as NumPy arrays, quantized ones on their grid."""
        quantized = {
            id(variable): quantizer(variable.value, False, ranges)
            for (variable, quantizer), ranges in zip(
                self.quantize_config.get_weights_and_quantizers(self.layer), self._weight_ranges
            )
        }
        return [keras.ops.convert_to_numpy(quantized.get(id(v), v.value)) for v in self.layer.weights]

    def get_config(self):
        config = {"quantize_config": keras.saving.serialize_keras_object(self.quantize_config)}
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layer = keras.saving.deserialize_keras_object(config.pop("layer"), custom_objects=custom_objects)
        quantize_config = keras.saving.deserialize_keras_object(config.pop("quantize_config"), custom_objects=custom_objects)
        return cls(layer, quantize_config, **config)


@keras.saving.register_keras_serializable(package="kopt")
class QuantizeLayer(keras.layers.Layer):
    """Quantizes a float tensor entering the quantized part of a model.

    Args:
        quantizer: A :class:`kopt.quantization.Quantizer`; the default tracks a
            moving average of the tensor's range, asymmetric 8-bit.
        **kwargs: Base layer arguments.

    Example:

    >>> import numpy as np
    >>> layer = QuantizeLayer()
    >>> layer(np.array([[0.0, 1.0]], "float32"), training=True).shape
    TensorShape([1, 2])
    """

    def __init__(self, quantizer=None, **kwargs):
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        if isinstance(quantizer, dict):
            quantizer = keras.saving.deserialize_keras_object(quantizer)
        if quantizer is None:
            quantizer = quantizers_lib.MovingAverageQuantizer()
        if not isinstance(quantizer, quantizers_lib.Quantizer):
            raise ValueError(f"QuantizeLayer needs a kopt.quantization Quantizer. Received: quantizer={quantizer!r}")
        self.quantizer = quantizer

    def build(self, input_shape=None):
        self._ranges = self.quantizer.build(input_shape, "input", self)
        self.built = True

    def call(self, inputs, training=None):
        # In the file this is a QUANTIZE op on float data; LiteRT's XNNPACK rounds
        # its ties to even, where FakeQuant rounds them up. Images scaled as
        # x / 127.5 - 1 sit exactly on ties, so without this the file and the QAT
        # model disagree on half the pixels (see fake_quant's ``ties``).
        return self.quantizer(inputs, training, self._ranges, ties="even")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "quantizer": keras.saving.serialize_keras_object(self.quantizer)}


def _leading_shape(layer, inputs):
    """The axes before the features of a Dense layer's N-D input (N > 2), or ``None``."""
    if not isinstance(layer, keras.layers.Dense) or not hasattr(inputs, "shape") or len(inputs.shape) <= 2:
        return None
    if all(size is not None for size in inputs.shape[1:-1]):
        return (-1,) + tuple(inputs.shape[1:-1])
    return tuple(keras.ops.shape(inputs)[:-1])


def _short_name(layer, variable):
    prefix = f"{layer.path}/" if layer.path else ""
    path = variable.path[len(prefix) :] if variable.path.startswith(prefix) else variable.name
    return path.replace("/", "_")
