"""Which built-in layers a scheme quantizes, and how: one table for every scheme.

Each Keras layer class falls in one of four kinds:

* **weighted** (Conv1D/2D/3D, DepthwiseConv1D/2D, Dense, EinsumDense,
  Conv1D/2DTranspose): weights fake-quantized (per-channel symmetric for
  convolutions, per-tensor symmetric for Dense, EinsumDense and the transposed ones,
  as TFLite's int8 kernels expect) and the activation's output quantized; a
  Conv3D's kernel per tensor, since TFLite's CONV_3D is float only and the
  file computes it in float on int8-grid weights;
* **slope** (PReLU): its output quantized, and its slope rounded as the
  converter rounds it for TFLite's int8 PRELU (:class:`ConverterRoundedQuantizer`);
* **table** (Embedding): the int8 table, per-tensor symmetric; TFLite's GATHER
  keeps the table's scale, so the output needs no range of its own;
* **output** (Add, Concatenate, average pooling (its input on the same grid), ReLU,
  LeakyReLU, Softmax, Activation, unfolded BatchNormalization, and Rescaling/Normalization,
  the preprocessing EfficientNet builds in, which TFLite runs as int8 MUL/ADD):
  a new tensor range, so the output is quantized;
* **passthrough** (max pooling, Flatten, Reshape, Dropout, nearest upsampling,
  padding, cropping, augmentation layers such as RandomFlip, which the file
  leaves out...): TFLite keeps the input's scale, nothing to quantize;
* **attention core** (what a MultiHeadAttention is split into, see
  :mod:`kopt.quantization.splits`): scores and softmax in float, the attention
  weights on softmax's fixed grid and the output quantized, as the converter
  runs it;
* **layer norm** (LayerNormalization): TFLite has no int8 kernel for it; the
  file computes its mean in int8 on the input's grid and the rest in float, and
  QAT does the same (:mod:`kopt.quantization.normalization`); the output is
  quantized;
* **unsupported**: anything else; :func:`quantize_config_for` raises an error
  naming the layer and how to give it a ``QuantizeConfig``.

A scheme only chooses bit widths (:class:`Bits`), so the 8-bit, 16x8 and n-bit
schemes share this table instead of copying it.
"""

import dataclasses

import keras
from keras import ops

from kopt.quantization.activations import activation_name
from kopt.quantization.activations import fixed_output_quantizer
from kopt.quantization.attention import AttentionCore
from kopt.quantization.fake_quant import lowering_active
from kopt.quantization.frames import FoldSteps
from kopt.quantization.frames import UnfoldSteps
from kopt.quantization.quantize_config import DefaultQuantizeConfig
from kopt.quantization.quantize_config import NoOpQuantizeConfig
from kopt.quantization.quantizers import LastValueQuantizer
from kopt.quantization.quantizers import MovingAverageQuantizer
from kopt.utils import layer_kinds
from tflite_export import inference

__all__ = [
    "Bits", "ConverterRoundedQuantizer", "DepthwiseKernelQuantizer", "has_kernel", "is_passthrough",
    "keeps_grid_as_op", "quantize_config_for", "unsupported_message",
]  # fmt: skip

L = keras.layers
_CONVOLUTIONS = (L.Conv1D, L.Conv2D)
_PASSTHROUGH = (
    L.InputLayer, L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.GlobalMaxPooling1D,
    L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.Flatten, L.Reshape, L.Permute, L.Dropout,
    L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout,
    L.AlphaDropout, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D, L.Cropping1D, L.Cropping2D,
    L.Cropping3D, L.Identity, L.RepeatVector, FoldSteps, UnfoldSteps,
)  # fmt: skip
_OUTPUT = (
    L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate,
    L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D, L.GlobalAveragePooling1D,
    L.GlobalAveragePooling2D, L.GlobalAveragePooling3D, L.BatchNormalization, L.ReLU, L.LeakyReLU,
    L.ELU, L.Softmax, L.Rescaling, L.Normalization,
)  # fmt: skip
# Passthrough layers the file has no op for: the tensor stays its producer's.
_VANISHING = (
    L.InputLayer, L.Identity, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D,
    L.GaussianNoise, L.GaussianDropout, L.AlphaDropout, L.Activation,
)  # fmt: skip
_UPSAMPLING = (L.UpSampling1D, L.UpSampling2D, L.UpSampling3D)
_WEIGHTED = _CONVOLUTIONS + (
    L.DepthwiseConv1D, L.DepthwiseConv2D, L.Dense, L.EinsumDense, L.Conv1DTranspose, L.Conv2DTranspose, L.LSTM, L.GRU, L.SimpleRNN,
    L.Embedding,
)  # fmt: skip
# TFLite's int8 AVERAGE_POOL_2D keeps its input's scale: the converter
# requantizes the input to the output's range, so QAT must quantize it there too.
_SAME_SCALE = (L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D)


@dataclasses.dataclass(frozen=True)
class Bits:
    """Bit widths of a scheme.

    Attributes:
        weights: Bits of weight grids (symmetric, narrow range).
        activations: Bits of activation grids.
        symmetric_activations: Symmetric activation ranges (TFLite's int16
            activations have zero point 0).
        per_axis: One weight range per output channel of a convolution.
    """

    weights: int = 8
    activations: int = 8
    symmetric_activations: bool = False
    per_axis: bool = True

    def weight_quantizer(self, per_axis):
        return LastValueQuantizer(num_bits=self.weights, per_axis=per_axis, symmetric=True, narrow_range=True)

    def depthwise_quantizer(self):
        if not self.per_axis:
            return self.weight_quantizer(False)
        return DepthwiseKernelQuantizer(num_bits=self.weights)

    def dense_quantizer(self):
        # The converter takes a quantization-aware Dense kernel on one int8 scale only.
        return self.weight_quantizer(False)

    def for_folded_kernel(self, kernel=None):
        """The bits of a layer whose BatchNormalization is folded into ``kernel`` (these, by default)."""
        del kernel
        return self

    def activation_quantizer(self):
        return MovingAverageQuantizer(
            num_bits=self.activations, symmetric=self.symmetric_activations, narrow_range=self.symmetric_activations
        )


@keras.saving.register_keras_serializable(package="kopt")
class DepthwiseKernelQuantizer(LastValueQuantizer):
    """Per-channel symmetric quantizer for a ``(h, w, in, multiplier)`` depthwise kernel.

    TFLite's depthwise convolution has ``in * multiplier`` output channels, each
    with its own scale; the kernel is viewed as ``(h, w, in * multiplier)`` to give
    every one of them a range.

    Example:

    >>> import numpy as np, keras
    >>> quantizer = DepthwiseKernelQuantizer()
    >>> ranges = quantizer.build((3, 3, 4, 2), "depthwise_kernel", keras.layers.Layer())
    >>> tuple(ranges["max"].shape)
    (8,)
    """

    def __init__(self, num_bits=8, per_axis=True, symmetric=True, narrow_range=True):
        # The other arguments exist for get_config round trips; TFLite's depthwise
        # weights are always per-channel, symmetric and narrow.
        for name, value in (("per_axis", per_axis), ("symmetric", symmetric), ("narrow_range", narrow_range)):
            if value is not True:
                raise ValueError(
                    f"DepthwiseKernelQuantizer is per-axis, symmetric and narrow-range; use LastValueQuantizer "
                    f"for other grids. Received: {name}={value!r}"
                )
        super().__init__(num_bits=num_bits, per_axis=True, symmetric=True, narrow_range=True)

    def build(self, tensor_shape, name, layer):
        channels = int(tensor_shape[-2]) * int(tensor_shape[-1])
        return super().build(tuple(tensor_shape[:-2]) + (channels,), name, layer)

    def __call__(self, inputs, training, weights, **kwargs):
        shape = tuple(inputs.shape)
        flat = ops.reshape(inputs, shape[:-2] + (shape[-2] * shape[-1],))
        return ops.reshape(super().__call__(flat, training, weights), shape)

    def range_of(self, inputs, weights):
        shape = tuple(inputs.shape)
        return super().range_of(ops.reshape(inputs, shape[:-2] + (shape[-2] * shape[-1],)), weights)


@keras.saving.register_keras_serializable(package="kopt")
class ConverterRoundedQuantizer(LastValueQuantizer):
    """Rounds a weight onto the int8 grid the TFLite converter gives it, and leaves the export float.

    For a weight the converter quantizes itself: PReLU's slope, which TFLite's
    int8 ``PRELU`` reads as a per-tensor symmetric int8 constant. A FakeQuant on
    it would be folded into a float constant while the converter fuses the
    PReLU, leaving the op in float; so QAT trains on the grid the file will hold,
    and the exported graph hands the converter the float slope to round.

    Example:

    >>> import numpy as np, keras
    >>> quantizer = ConverterRoundedQuantizer()
    >>> ranges = quantizer.build((3,), "alpha", keras.layers.Layer())
    >>> slope = quantizer(np.array([0.25, 0.1, 0.003], "float32"), True, ranges)
    >>> [round(float(v) * 127 / 0.25) for v in slope]
    [127, 51, 2]
    """

    def __init__(self, num_bits=8, per_axis=False, symmetric=True, narrow_range=True):
        # The arguments exist for get_config round trips: the converter's grid is fixed.
        for name, value, fixed in (
            ("num_bits", num_bits, 8), ("per_axis", per_axis, False), ("symmetric", symmetric, True),
            ("narrow_range", narrow_range, True),
        ):  # fmt: skip
            if type(value) is not type(fixed) or value != fixed:
                raise ValueError(
                    f"ConverterRoundedQuantizer uses the converter's grid (8 bits, per tensor, symmetric, "
                    f"narrow). Received: {name}={value!r}"
                )
        super().__init__(num_bits=8, per_axis=False, symmetric=True, narrow_range=True)

    def __call__(self, inputs, training, weights, **kwargs):
        if lowering_active():
            return inputs
        return super().__call__(inputs, training, weights, **kwargs)


def has_kernel(layer):
    """Whether ``layer`` is of a kind whose weights the table quantizes (convolutions, Dense, RNNs, Embedding).

    Example:

    >>> has_kernel(keras.layers.Dense(2)), has_kernel(keras.layers.ReLU())
    (True, False)
    """
    return isinstance(layer, _WEIGHTED) or _is_bidirectional_rnn(layer)


def _is_bidirectional_rnn(layer):
    return isinstance(layer, L.Bidirectional) and bool(layer_kinds.recurrent_directions(layer))


def is_passthrough(layer):
    """Whether TFLite runs ``layer`` on int8 data without a new range."""
    if inference.is_augmentation(layer):
        return True
    if isinstance(layer, _UPSAMPLING):
        return getattr(layer, "interpolation", "nearest") == "nearest"
    if isinstance(layer, L.Activation):
        return activation_name(layer.activation) == "linear"
    return isinstance(layer, _PASSTHROUGH)


def keeps_grid_as_op(layer):
    """Whether ``layer`` is a passthrough that TFLite runs as an op of its own (max pooling, padding, reshapes).

    Its output has no range of its own in the file, so the converter gives it
    the grid a Concatenate reading it needs (see :mod:`kopt.quantization.grid_links`).

    Example:

    >>> keeps_grid_as_op(keras.layers.MaxPooling2D()), keeps_grid_as_op(keras.layers.Dropout(0.1))
    (True, False)
    """
    return is_passthrough(layer) and not isinstance(layer, _VANISHING) and not inference.is_augmentation(layer)


def quantize_config_for(layer, bits, *, quantize_activation=True):
    """Returns the ``QuantizeConfig`` of a supported built-in layer, or ``None``.

    Args:
        layer: A Keras layer.
        bits: The scheme's :class:`Bits`.
        quantize_activation: ``False`` when a following ReLU is fused into this
            layer, so its own output gets no range.

    Returns:
        A config, or ``None`` for a passthrough layer or an unsupported one (check
        with :func:`is_passthrough`).
    """
    activation_quantizer = bits.activation_quantizer()
    activation_attrs = ["activation"] if quantize_activation else []
    if isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)):
        return DefaultQuantizeConfig(["kernel"], bits.depthwise_quantizer(), activation_attrs, activation_quantizer)
    if isinstance(layer, _CONVOLUTIONS):
        return DefaultQuantizeConfig(
            ["kernel"], bits.weight_quantizer(bits.per_axis), activation_attrs, activation_quantizer
        )
    if isinstance(layer, L.Conv3D):
        # TFLite's CONV_3D is float only: the file computes it in float, so its kernel takes one int8 grid
        # (as a recurrent layer's) and its output a range; TensorFlow's per-channel kernel takes no 5-D tensor.
        return DefaultQuantizeConfig(["kernel"], bits.weight_quantizer(False), activation_attrs, activation_quantizer)
    if isinstance(layer, L.LayerNormalization):
        if not quantize_activation:
            return NoOpQuantizeConfig()
        return DefaultQuantizeConfig(quantize_output=True, output_quantizer=activation_quantizer)
    if isinstance(layer, AttentionCore):
        return DefaultQuantizeConfig(
            activation_attrs=["attention_activation"],
            activation_quantizer=activation_quantizer,
            quantize_output=quantize_activation,
            output_quantizer=activation_quantizer,
        )
    if isinstance(layer, (L.LSTM, L.GRU, L.SimpleRNN)):
        return DefaultQuantizeConfig(
            ["cell.kernel", "cell.recurrent_kernel"],
            bits.weight_quantizer(False),
            quantize_output=quantize_activation,
            output_quantizer=activation_quantizer,
        )
    if _is_bidirectional_rnn(layer):
        # Both directions' kernels on the int8 grid; the loops stay float in the file, as a
        # single recurrent layer's do, and the merged output gets one range.
        return DefaultQuantizeConfig(
            [f"{direction}_layer.cell.{name}" for direction in ("forward", "backward")
             for name in ("kernel", "recurrent_kernel")],
            bits.weight_quantizer(False),
            quantize_output=quantize_activation,
            output_quantizer=activation_quantizer,
        )  # fmt: skip
    if isinstance(layer, L.Embedding):
        return DefaultQuantizeConfig(["embeddings"], bits.weight_quantizer(False))
    if isinstance(layer, L.PReLU):
        return DefaultQuantizeConfig(
            ["alpha"],
            ConverterRoundedQuantizer(),
            quantize_output=quantize_activation,
            output_quantizer=activation_quantizer,
        )
    if isinstance(layer, L.Dense):
        return DefaultQuantizeConfig(["kernel"], bits.dense_quantizer(), activation_attrs, activation_quantizer)
    if isinstance(layer, (L.EinsumDense, L.Conv1DTranspose, L.Conv2DTranspose)):
        # A transposed kernel keeps its output channels on axis -2, not the last
        # one a per-channel grid reads, so its grid is per tensor (as in tfmot).
        return DefaultQuantizeConfig(["kernel"], bits.weight_quantizer(False), activation_attrs, activation_quantizer)
    if isinstance(layer, L.Activation):
        if not quantize_activation:
            return NoOpQuantizeConfig()
        return DefaultQuantizeConfig(activation_attrs=["activation"], activation_quantizer=activation_quantizer)
    if isinstance(layer, _UPSAMPLING) and not is_passthrough(layer) or isinstance(layer, _OUTPUT):
        if not quantize_activation:
            return NoOpQuantizeConfig()
        fixed = fixed_output_quantizer(keras.activations.softmax, bits.activations)
        output_quantizer = fixed if isinstance(layer, L.Softmax) and fixed is not None else activation_quantizer
        return DefaultQuantizeConfig(
            activation_quantizer=activation_quantizer,
            quantize_output=True,
            output_quantizer=output_quantizer,
            shared_input_range=isinstance(layer, _SAME_SCALE),
        )
    return None


def unsupported_message(layers):
    """The error for layers no scheme entry covers, naming each and the fix."""
    names = ", ".join(f"{layer.name!r} ({type(layer).__name__})" for layer in layers)
    listed = ",".join(layer.name for layer in layers)
    return (
        f"kopt.quantization has no built-in quantization for layer(s) {names}. Leave them in float, the "
        f"file computing them in float between int8 layers: `quantize_model(model, float_layers={[layer.name for layer in layers]})` "
        f"(kopt-optimize: --qat_float_layers={listed} with --qat, --ptq_float_layers={listed} with --ptq=int8). "
        "Or give each a "
        "QuantizeConfig: `kopt.quantization.quantize_annotate_layer(layer, quantize_config=MyConfig())` "
        "(subclass kopt.quantization.QuantizeConfig; NoOpQuantizeConfig() keeps a layer in float), "
        "or leave the layer unannotated and call quantize_apply on a model annotated layer by layer."
    )
