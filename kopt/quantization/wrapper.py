"""QuantizeWrapper and QuantizeLayer: the layers a quantization-aware model is made of.

``QuantizeWrapper`` runs the wrapped layer with its weights fake-quantized: a
``keras.StatelessScope`` maps each weight variable to its quantized value while
the layer runs, so any layer works without attribute surgery and the gradient
reaches the float weights through the straight-through estimator. Activations
named by the config are swapped for quantization-aware ones for the duration of
the call, and outputs are quantized last. Range variables are non-trainable
variables of the wrapper, so they are saved with the model and resume training.

``QuantizeLayer`` (``kopt.quantization.quantize_layer``, exported here too)
quantizes a float tensor entering the quantized part of the model, such as the
model input; its range becomes the input scale of the TFLite file.
"""

from typing import Any

import keras
import numpy as np

from kopt.quantization import activations as activations_lib
from kopt.quantization import bias as bias_lib
from kopt.quantization import conv_lowering
from kopt.quantization import fake_quant as fake_quant_lib
from kopt.quantization import file_ops
from kopt.quantization import grid_links
from kopt.quantization import integer_grid
from kopt.quantization import normalization as normalization_lib
from kopt.quantization import quantize_config as config_lib
from kopt.quantization.quantize_layer import QuantizeLayer
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

    quantizes_wrapped_layer = True  # see quantize_layer.is_quantize_wrapper

    def __init__(self, layer: keras.layers.Layer, quantize_config: config_lib.QuantizeConfig | dict, **kwargs):
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
        # The fused ReLU wrapper that quantizes this one's output, when this one
        # does not (weak, like _input_source); False when several read it.
        self._output_sink = None
        # The layers whose quantizers give each of several inputs its grid (weak).
        self._input_sources = None
        # An earlier layer computing the same function of the same tensor, whose
        # ranges this one rounds with (weak; see grid_links).
        self._twin = None
        # The Concatenate that reads this layer's output (weak; see grid_links).
        self._concat_sink = None

    def __call__(self, *args, **kwargs) -> Any:
        # A symbolic call (building the model, or loading it) shows the grids
        # around this layer: see kopt.quantization.grid_links.
        if args:
            grid_links.link(self, args[0])
        return super().__call__(*args, **kwargs)

    def output_range(self) -> tuple[config_lib.quantizers_lib.Quantizer, dict[str, keras.Variable]] | None:
        """``(quantizer, range variables)`` that put this layer's output on its grid, or ``None``."""
        config = self.quantize_config
        concat = grid_links.concat_range(self)
        if concat is not None:
            return concat
        owner = self._range_owner()
        output_quantizers = config.get_output_quantizers(self.layer)
        if output_quantizers:
            if len(output_quantizers) == 1 and config.output_shares_input_range(self.layer):
                source = self._source_range()
                if source is not None:
                    return source  # average pooling rounds onto its input's grid (call)
            return output_quantizers[-1], owner._output_ranges[-1]
        activations = config.get_activations_and_quantizers(self.layer)
        if activations and owner._activation_ranges:
            activation, quantizer = activations[-1]
            fixed = activations_lib.fixed_output_quantizer(activation, getattr(quantizer, "num_bits", None))
            if fixed is not None:
                return fixed, {}  # sigmoid, softmax, tanh: TFLite's fixed grid, not the tracked range
            return quantizer, owner._activation_ranges[-1][1]
        return None

    def _range_owner(self):
        """The wrapper whose range variables this one quantizes with: its twin's (grid_links), or its own."""
        twin = self._twin() if self._twin else None
        return twin if twin is not None and twin.built else self

    def build(self, input_shape: Any = None) -> None:
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

    def call(self, inputs: Any, *args, training: bool | None = None, **kwargs) -> Any:
        config = self.quantize_config
        owner = self._range_owner()
        if owner is not self:
            # A twin rounds on its sibling's grid and leaves the ranges to it: the
            # file computes the two as one op with one scale.
            training = False
        # Inference computes what the file computes, on the ranges already set.
        # Calibration is still setting them, so it runs the float layer, as training does.
        exact = not training and not fake_quant_lib.calibration_active()
        output_quantizers = list(zip(config.get_output_quantizers(self.layer), owner._output_ranges))
        shared = bool(output_quantizers) and config.output_shares_input_range(self.layer)
        concat = grid_links.concat_range(self) if exact else None
        concat_after = None
        if concat is not None and grid_links.carries_no_range(self):
            # The converter puts this output on the concatenation's grid itself.
            concat_after = None if fake_quant_lib.lowering_active() else concat
            concat = None
        elif shared:
            concat = None  # its inputs are rounded onto its own range too (below), as before
        if concat is not None and output_quantizers:
            # The file gives a tensor that only a concatenation reads the
            # concatenation's scale, and requantizes straight onto it.
            output_quantizers[-1], concat = concat, None
        source_range = self._source_range() if shared else None
        if source_range is not None:
            # The input's own grid, read from its producer's range: the file needs
            # the very same scale on both sides (average pooling), and two ranges
            # tracked apart differ in the last bits, which the converter rejects.
            # The inputs are already on that grid; the output is rounded onto it.
            # The exported graph leaves that rounding to the converter, which
            # carries the input's scale through the pooling: a FakeQuant there
            # made it keep other readers of the pooled tensor's input (NASNet's
            # max pools beside an average pool) in float.
            output_quantizers[0] = source_range
            if fake_quant_lib.lowering_active():
                output_quantizers = output_quantizers[1:]
        elif shared and not fake_quant_lib.lowering_active():
            # The range tracks the inputs and the output is rounded onto the same
            # grid: TFLite requantizes the input to the output's scale. The
            # converter inserts that requantization itself, and fails on two
            # fake-quant ops in a row, so the exported graph leaves it out.
            quantizer, ranges = output_quantizers[0]
            inputs = keras.tree.map_structure(lambda tensor: quantizer(tensor, training, ranges), inputs)
        integer_op = file_ops.integer_op(self, inputs) if exact else None
        if integer_op is not None:
            # An Add, Multiply or global average pooling: XNNPACK's integer op is all of it.
            outputs = integer_op()
            for quantizer, ranges in output_quantizers:
                outputs = quantizer(outputs, training, ranges)
            return outputs
        weights_and_quantizers = config.get_weights_and_quantizers(self.layer)
        quantized = {
            id(variable): quantizer(variable.value, training, ranges)
            for (variable, quantizer), ranges in zip(weights_and_quantizers, self._weight_ranges)
        }
        scales = self._grid_scales(quantized, weights_and_quantizers)
        activations = config.get_activations_and_quantizers(self.layer)
        activation_ranges = list(owner._activation_ranges)
        if concat is not None:  # the output's grid is the activation's (see above)
            activations = activations[:-1] + [(activations[-1][0], concat[0])]
            activation_ranges[-1] = (activation_ranges[-1][0], concat[1])
        shared_input = file_ops.activation_input_source(self, activations, activation_ranges)
        if shared_input is not None:
            # An Activation layer's input is its producer's output tensor: the file
            # reads it on the producer's grid, not on a second range of its own.
            activation_ranges[0] = (shared_input, activation_ranges[0][1])
        aware = [
            activations_lib.QuantizeAwareActivation(
                activation,
                quantizer,
                input_ranges,
                output_ranges,
                training,
                shared_input=shared_input is not None,
                file_scales=file_ops.kernel_scales(activation, quantizer, input_ranges, output_ranges)
                if exact
                else None,
            )
            for (activation, quantizer), (input_ranges, output_ranges) in zip(activations, activation_ranges)
        ]
        # Activation ranges are updated inside the wrapped layer's call.
        activation_ranges = [
            v for pair in activation_ranges for d in pair if d and d is not shared_input for v in d.values()
        ]
        if aware:
            config.set_quantize_activations(self.layer, aware)
        mean_grid = self._layer_norm_grid()
        if mean_grid is not None:
            outputs = normalization_lib.layer_norm_of(self.layer, inputs, *mean_grid)
            for quantizer, ranges in output_quantizers:
                outputs = quantizer(outputs, training, ranges)
            return outputs
        if isinstance(self.layer, keras.layers.Concatenate) and exact and self._input_sources:
            if output_quantizers and not fake_quant_lib.lowering_active():
                # Each input reaches the file's concatenation through a QUANTIZE onto its grid.
                sources = [grid_links.quantizer_range(source()) for source in self._input_sources]
                inputs = [file_ops.requantize_onto(t, grid, output_quantizers[-1]) for t, grid in zip(inputs, sources)]
        leading = integer_grid.leading_shape(self.layer, inputs)
        if leading is not None:
            # A Dense on (batch, steps, features) becomes a reshape, a MatMul and a
            # BiasAdd after it, which the converter cannot fuse into one int8
            # FULLY_CONNECTED; on the 2-D view it can. Same values either way.
            inputs = keras.ops.reshape(inputs, (-1, inputs.shape[-1]))
        rescaled_from = None
        if scales is not None and exact and integer_grid.accumulates_exactly(self.layer, self.compute_dtype):
            # In inference the layer's kernel sums integers, exactly, as the
            # file's int32 accumulator does; its activation first scales the sum
            # back. Training keeps the float sum: under MirroredStrategy a
            # replica's input grid is its own batch range, not the mean the
            # range variables hold.
            inputs = integer_grid.layer_to_grid(self.layer, inputs, quantized, *scales)
            rescaled_from = self.layer.activation
            grid = self._output_grid()
            self.layer.activation = integer_grid.RescaledActivation(
                rescaled_from, scales[0] * scales[1], output_scale=bias_lib.activation_scale(*grid) if grid else None
            )
        try:
            with conv_lowering.lowered(
                self.layer,
                weights_and_quantizers,
                self._weight_ranges,
                training,
                quantized_activation=bool(aware),
                output_grid=self._output_grid,
            ):
                outputs, updates = self.run_with_values(
                    quantized, inputs, *args, training=training, extra_variables=activation_ranges, **kwargs
                )
            if leading is not None:
                outputs = keras.ops.reshape(outputs, leading + (outputs.shape[-1],))
        finally:
            if rescaled_from is not None:
                self.layer.activation = rescaled_from
            if aware:
                config.set_quantize_activations(self.layer, [activation for activation, _ in activations])
        # Assigned once the original activations are back: assigning with the
        # quantizing ones installed made MirroredStrategy runs drift from
        # one-device runs (tests/quantization/test_distributed.py).
        self.apply_updates(updates)
        if source_range is not None and not fake_quant_lib.lowering_active():
            outputs = file_ops.average_pool_rounding(outputs, *source_range)
        for index, (quantizer, ranges) in enumerate(output_quantizers):
            outputs = quantizer(outputs, False if shared and index == 0 else training, ranges)
        if concat_after is not None:
            outputs = file_ops.requantize_onto(outputs, self._source_range(), concat_after)
        return outputs

    def _layer_norm_grid(self):
        """``(quantizer, ranges)`` of a LayerNormalization's input, whose grid its mean is rounded to, or ``None``."""
        layer = self.layer
        if not isinstance(layer, keras.layers.LayerNormalization) or layer.rms_scaling:
            return None
        if fake_quant_lib.lowering_active():
            return None  # the converter rounds the mean itself
        return self._source_range()

    def _source_range(self):
        """``(quantizer, range variables)`` of the layer that quantized this one's input, or ``None``."""
        return grid_links.quantizer_range(self._input_source() if self._input_source else None)

    def _grid_scales(self, quantized, weights_and_quantizers):
        """``(input_scale, weight_scale)`` of a layer the file runs on an int32 accumulator, or ``None``.

        Known when the input's quantizer and a symmetric kernel grid are; the
        bias in ``quantized`` is then rounded to ``input_scale * weight_scale``,
        the grid the file stores it on.
        """
        source = self._input_source() if self._input_source else None
        if source is None or fake_quant_lib.lowering_active():
            return None  # The converter rounds the float bias itself, on the same grid.
        kernel = getattr(self.layer, "kernel", None)
        bias = getattr(self.layer, "bias", None)
        if kernel is None or id(kernel) not in quantized or (bias is not None and id(bias) in quantized):
            return None
        quantizer, ranges = next(
            (q, r) for (variable, q), r in zip(weights_and_quantizers, self._weight_ranges) if variable is kernel
        )
        weight_scale = bias_lib.weight_scale(kernel.value, quantizer, ranges)
        producer = self._source_range()
        input_scale = bias_lib.activation_scale(*producer) if producer is not None else None
        if weight_scale is None or input_scale is None:
            return None
        if bias is not None:
            if tuple(weight_scale.shape) not in ((), tuple(bias.shape)):
                return None
            quantized[id(bias)] = bias_lib.fake_quant_bias(bias.value, input_scale * weight_scale)
        return input_scale, weight_scale

    def _output_grid(self):
        """``(quantizer, ranges)`` of the grid the file requantizes this layer's accumulator to, or ``None``.

        Its own output range, or that of the fused ReLU reading it; for an
        activation TFLite runs as an op of its own (softmax), that op's input range.
        """
        activation = getattr(self.layer, "activation", None)
        if (
            activation is not None
            and activations_lib.activation_name(activation) not in activations_lib.FUSED_ACTIVATIONS
        ):
            activations = self.quantize_config.get_activations_and_quantizers(self.layer)
            ranges = self._range_owner()._activation_ranges
            if activations and ranges and ranges[-1][0] is not None:
                return activations[-1][1], ranges[-1][0]
            return None
        own = self.output_range()
        if own is not None:
            return own
        sink = self._output_sink() if self._output_sink else None
        return sink.output_range() if sink is not None else None

    def quantized_weights(self) -> list[np.ndarray]:
        """The wrapped layer's weights as NumPy arrays, quantized ones on their grid."""
        quantized = {
            id(variable): quantizer(variable.value, False, ranges)
            for (variable, quantizer), ranges in zip(
                self.quantize_config.get_weights_and_quantizers(self.layer), self._weight_ranges
            )
        }
        return [keras.ops.convert_to_numpy(quantized.get(id(v), v.value)) for v in self.layer.weights]

    def get_config(self) -> dict[str, Any]:
        config = {"quantize_config": keras.saving.serialize_keras_object(self.quantize_config)}
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> "QuantizeWrapper":
        config = dict(config)
        layer = keras.saving.deserialize_keras_object(config.pop("layer"), custom_objects=custom_objects)
        quantize_config = keras.saving.deserialize_keras_object(
            config.pop("quantize_config"), custom_objects=custom_objects
        )
        return cls(layer, quantize_config, **config)


def _short_name(layer, variable):
    prefix = f"{layer.path}/" if layer.path else ""
    if variable.path.startswith(prefix):
        return variable.path[len(prefix) :].replace("/", "_")
    # A sublayer outside the layer's path: a Bidirectional's two copies ("forward_lstm/lstm_cell/kernel",
    # "backward_lstm/..."), whose variables share their short names.
    owners = variable.path.split("/")[:-1]
    return "_".join([owners[0], variable.name] if owners else [variable.name])
