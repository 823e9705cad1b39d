"""What each Keras layer (or ``keras.ops`` call in a functional graph) does to channels.

:func:`classify` names the role a graph node plays for structured pruning:

* ``"producer"``: makes a new set of output channels that may be pruned
  (``Dense``, ``Conv1D/2D/3D`` with ``groups=1``, ``SeparableConv1D/2D``,
  ``Conv1D/2D/3DTranspose``, whose kernel runs over them on axis -2).
* ``"recurrent"``: ``LSTM``, ``GRU`` and ``SimpleRNN`` (one output, not stateful):
  their units are a new set of channels, each unit a column in every gate.
* ``"bidirectional"``: ``Bidirectional`` around such a layer, merged by ``concat``,
  ``sum``, ``ave`` or ``mul``: unit ``i`` of both directions is one channel (it
  appears twice in a concatenated output), so a unit goes from both at once.
* ``"depthwise"``: one output per input channel times ``depth_multiplier``.
* A ``TimeDistributed`` layer takes its inner layer's role when that is a
  producer, a depthwise convolution, a BatchNormalization on the last axis, a
  pass-through layer or ``Flatten`` (the time axis stays; a CRNN's or video
  model's per-frame layers).
* ``"attention"``: a ``MultiHeadAttention`` (default attention axes): its heads
  are a set of channels of their own that can be pruned; what it reads is kept whole.
* ``"normalization"``: per-channel weights on the last axis (BatchNormalization,
  ConvNeXt's LayerScale, PReLU's slopes, and any class given to
  :func:`register_channelwise_layer`).
* ``"pass"``: channels in, same channels out (activations, dropout, pooling...).
* ``"flatten"``, ``"concat"`` (on the last axis), ``"merge"`` (elementwise).
* ``"constant"`` (:mod:`kopt.pruning.structured_ops` reads ``keras.ops``
  calls): a ``keras.ops`` add, subtract, product, maximum or minimum of
  one tensor and a constant with one value per channel (a position embedding
  computed once, ``x + table``): the constant's last axis is sliced with the
  channels. A constant with one value for all channels is ``"pass"``.
* ``"mixing"``: reads all channels together (Softmax, LayerNormalization,
  a Reshape that moves the last axis); what it reads is kept whole. A Reshape
  that keeps the last axis (``(C,)`` to ``(1, 1, C)``) passes the channels on.
* ``"opaque"``: anything else, including ``channels_first`` layers, shared
  layers, nested models and subclasses of Keras layers; pruning what it reads is
  refused.

Only layers from ``keras.layers`` itself are recognised, by class name: a user
subclass of ``Conv2D`` may change what its weights mean. A user layer that scales
or shifts each channel by its own weights joins through
:func:`register_channelwise_layer`.

Example:

>>> is_elementwise("relu"), is_elementwise("softmax")
(True, False)
"""

import keras
import numpy as np

from kopt.pruning.structured_ops import classify_op

__all__ = [
    "classify",
    "channelwise_size_argument",
    "fold_gates",
    "is_elementwise",
    "is_transposed",
    "keeps_channels",
    "output_columns",
    "output_kernel",
    "output_width",
    "register_channelwise_layer",
    "unit_layers",
]

PRODUCERS = ("Dense", "Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D")
# Producers whose kernel holds the output channels on axis -2 and the input channels last.
TRANSPOSED = ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
# Recurrent layers and their gates: each weight's last axis holds the gates' columns one after another.
GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}
DEPTHWISE = ("DepthwiseConv1D", "DepthwiseConv2D")
_SPATIAL = tuple(
    f"{base}{dim}D"
    for base in (
        "MaxPooling",
        "AveragePooling",
        "GlobalAveragePooling",
        "GlobalMaxPooling",
        "ZeroPadding",
        "Cropping",
        "UpSampling",
        "SpatialDropout",
    )
    for dim in (1, 2, 3)
)
_PASS_THROUGH = _SPATIAL + (
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Dropout",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Identity",
    "RepeatVector",  # (batch, features) to (batch, n, features): each feature stays one channel
    # Spatial preprocessing and augmentation: each channel is resampled on its own.
    "Resizing",
    "CenterCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "RandomCrop",
)
_MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
# Each output channel of these depends on every input channel, so dropping one
# (even an all-zero one) would change what the kept channels compute.
_CHANNEL_MIXING = (
    "Softmax",
    "LayerNormalization",
    "GroupNormalization",
    "UnitNormalization",
    "RMSNormalization",
    "Reshape",
    "Permute",
)
_ELEMENTWISE_ACTIVATIONS = frozenset(
    (
        "linear",
        "relu",
        "relu6",
        "sigmoid",
        "tanh",
        "elu",
        "selu",
        "gelu",
        "silu",
        "swish",
        "softplus",
        "softsign",
        "hard_sigmoid",
        "hard_silu",
        "hard_swish",
        "leaky_relu",
        "exponential",
        "mish",
        "celu",
        "log_sigmoid",
        "sparse_plus",
        "squareplus",
        "hard_tanh",
        "soft_shrink",
        "hard_shrink",
        "tanh_shrink",
    )
)
# Channel-wise layers outside keras.layers: (config module, class name) -> the
# constructor argument holding the channel count (None when the weights are built
# from the input's shape).
_BUILTIN_CHANNELWISE = {("keras.src.applications.convnext", "LayerScale"): "projection_dim"}
_REGISTERED_CHANNELWISE = {}  # class -> size argument
_MISSING = object()


def register_channelwise_layer(layer_class: type[keras.layers.Layer], *, size_argument: str | None = None) -> None:
    """Lets structured pruning slice a layer that weighs each channel on its own.

    The layer's output channel ``c`` must depend only on its input channel ``c``,
    and each of its weights must be one vector over the channels (the last axis),
    like a BatchNormalization or a learned per-channel scale. Structured pruning
    then removes the pruned channels from its weights as well.

    Args:
        layer_class: A ``keras.layers.Layer`` subclass.
        size_argument: The ``get_config()`` key holding the channel count, if the
            layer builds its weights from it rather than from the input shape; it
            is lowered to the channels kept.

    Example:

    >>> import keras
    >>> class ChannelScale(keras.layers.Layer):
    ...     def build(self, input_shape):
    ...         self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")
    ...     def call(self, x):
    ...         return x * self.scale
    >>> register_channelwise_layer(ChannelScale)
    >>> channelwise_size_argument(ChannelScale(), {"class_name": "ChannelScale", "module": "__main__"}) is None
    True
    """
    if not isinstance(layer_class, type) or not issubclass(layer_class, (keras.layers.Layer,)):
        raise ValueError(f"layer_class must be a keras.layers.Layer subclass. Received: layer_class={layer_class!r}")
    if size_argument is not None and not isinstance(size_argument, str):
        raise ValueError(f"size_argument must be a config key (str) or None. Received: size_argument={size_argument!r}")
    _REGISTERED_CHANNELWISE[layer_class] = size_argument


def channelwise_size_argument(layer, layer_config):
    """The size argument of a registered or built-in channel-wise layer (maybe None), else a sentinel.

    Returns :data:`_MISSING` (compare with ``is_channelwise``) for other layers.
    """
    if type(layer) in _REGISTERED_CHANNELWISE:
        return _REGISTERED_CHANNELWISE[type(layer)]
    key = (str(layer_config.get("module", "")), layer_config.get("class_name"))
    return _BUILTIN_CHANNELWISE.get(key, _MISSING)


def is_channelwise(layer, layer_config):
    return layer is not None and channelwise_size_argument(layer, layer_config) is not _MISSING


def is_elementwise(activation) -> bool:
    """Whether a Keras activation (as stored in a config) acts on each channel alone."""
    return isinstance(activation, str) and activation in _ELEMENTWISE_ACTIVATIONS


def fold_gates(values, layer):
    """Per-unit sums of per-column ``values`` (last axis): a recurrent layer's gates added up.

    >>> import numpy as np
    >>> fold_gates(np.arange(8.0), keras.layers.LSTM(2)).tolist()
    [12.0, 16.0]
    """
    gates = GATES.get(type(layer).__name__, 1) if type(layer).__module__.startswith("keras") else 1
    return values.reshape(*values.shape[:-1], gates, -1).sum(-2)


def unit_layers(layer):
    """The layers whose output columns are ``layer``'s channels: a Bidirectional's two directions, a
    TimeDistributed's inner layer, or itself."""
    if isinstance(layer, keras.layers.Bidirectional):
        return [layer.forward_layer, layer.backward_layer]
    if isinstance(layer, keras.layers.TimeDistributed):
        return [layer.layer]
    return [layer]


def output_width(layer) -> int:
    """A producer's output channels: its ``filters`` or ``units`` (a Bidirectional's, each direction's)."""
    config = unit_layers(layer)[0].get_config()
    return int(config.get("filters") or config["units"])


def output_kernel(layer):
    """The kernel whose last axis runs over a producer's output columns (a separable
    convolution's pointwise kernel, a recurrent layer's input kernel)."""
    if hasattr(layer, "pointwise_kernel"):
        return layer.pointwise_kernel
    return layer.cell.kernel if hasattr(layer, "cell") else layer.kernel


def output_columns(layer, kernel):
    """``kernel`` (an array of :func:`output_kernel`'s values) with the output channels on its last axis.

    >>> import numpy as np
    >>> output_columns(keras.layers.Conv2DTranspose(4, 3), np.zeros((3, 3, 4, 2))).shape
    (3, 3, 2, 4)
    """
    return np.swapaxes(kernel, -1, -2) if is_transposed(layer) else kernel


def is_transposed(layer) -> bool:
    """Whether ``layer`` is one of Keras' transposed convolutions (kernel ``(..., out, in)``)."""
    return type(layer).__name__ in TRANSPOSED and type(layer).__module__.startswith("keras")


def keeps_channels(layer, config) -> bool:
    """Whether a ``Reshape`` leaves the last axis alone (squeeze-and-excitation's ``(1, 1, C)``).

    Row-major order keeps element ``c`` of the last axis at ``c`` when that axis keeps
    its length, so each channel stays one channel; the target's last entry must then
    follow the channels kept or added.
    """
    target = tuple(config.get("target_shape") or ())
    last = layer.input.shape[-1] if len(layer.input.shape) >= 2 else None
    return bool(target) and last is not None and target[-1] == last


def classify(layer, layer_config: dict, node: dict, shared: bool) -> str:
    """The role of one graph node; see the module docstring.

    Args:
        layer: The layer, or None for a ``keras.ops`` call.
        layer_config: Its entry in ``model.get_config()["layers"]``.
        node: The inbound node (``{"args", "kwargs"}``) being processed.
        shared: Whether the layer is called more than once.

    Returns:
        One of the role names above.
    """
    class_name = layer_config["class_name"]
    config = layer_config.get("config", {})
    if layer is None:
        return classify_op(layer_config, node)
    if not shared and is_channelwise(layer, layer_config) and len(layer.input.shape) >= 2:
        return "normalization"
    if shared or layer_config.get("module") != "keras.layers":
        return "opaque"
    if config.get("data_format", "channels_last") != "channels_last":
        return "opaque"
    if class_name in PRODUCERS or class_name in TRANSPOSED:
        return "producer" if config.get("groups", 1) == 1 else "opaque"
    if class_name in GATES:
        plain = not config.get("return_state") and not config.get("stateful")
        return "recurrent" if plain else "opaque"
    if class_name == "Bidirectional":
        return "bidirectional" if _plain_bidirectional(layer, config) else "opaque"
    if class_name == "TimeDistributed":
        return _time_distributed_role(config["layer"], len(layer.input.shape) - 1)
    if class_name in DEPTHWISE:
        return "depthwise"
    if class_name == "MultiHeadAttention":
        plain = config.get("attention_axes") in (None, [1], (1,), 1) and not config.get("use_gate")
        return "attention" if plain and config.get("sliding_window") is None else "opaque"
    if class_name == "BatchNormalization":
        axes = config["axis"] if isinstance(config["axis"], list) else [config["axis"]]
        rank = len(layer.input.shape)
        return "normalization" if [axis % rank for axis in axes] == [rank - 1] else "opaque"
    if class_name == "PReLU":
        # One slope per channel unless the channel axis shares one (then it passes channels on).
        return "pass" if int(layer.alpha.shape[-1]) == 1 else "normalization"
    if class_name in _PASS_THROUGH:
        return "pass"
    if class_name == "Activation":
        return "pass" if is_elementwise(config["activation"]) else "mixing"
    if class_name == "Reshape" and keeps_channels(layer, config):
        return "pass"
    if class_name in _CHANNEL_MIXING:
        return "mixing"
    if class_name == "Flatten":
        return "flatten"
    if class_name == "Concatenate":
        rank = len(layer.output.shape)
        return "concat" if config["axis"] % rank == rank - 1 else "merge"
    if class_name in _MERGES:
        return "merge"
    return "opaque"


def _time_distributed_role(inner, rank):
    """The role of a ``TimeDistributed`` layer, from its inner layer's config (``rank``: a frame's, with the batch)."""
    name, config = inner.get("class_name"), inner.get("config", {})
    if inner.get("module") != "keras.layers" or config.get("data_format", "channels_last") != "channels_last":
        return "opaque"
    if name in PRODUCERS or name in TRANSPOSED:
        return "producer" if config.get("groups", 1) == 1 else "opaque"
    if name in DEPTHWISE:
        return "depthwise"
    if name == "BatchNormalization":
        axes = config["axis"] if isinstance(config["axis"], list) else [config["axis"]]
        return "normalization" if [axis % rank for axis in axes] == [rank - 1] else "opaque"
    if name in _PASS_THROUGH or name == "Activation" and is_elementwise(config["activation"]):
        return "pass"
    return "flatten" if name == "Flatten" else "opaque"


def _plain_bidirectional(layer, config):
    inner = config.get("layer", {})
    inner_config = inner.get("config", {})
    return (
        inner.get("module") == "keras.layers"
        and inner.get("class_name") in GATES
        and not inner_config.get("return_state")
        and not inner_config.get("stateful")
        and config.get("merge_mode") in ("concat", "sum", "ave", "mul")
        and type(layer.backward_layer) is type(layer.forward_layer)
        and layer.backward_layer.units == layer.forward_layer.units
    )
