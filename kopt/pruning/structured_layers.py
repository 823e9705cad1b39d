"""What each Keras layer (or ``keras.ops`` call in a functional graph) does to channels.

:func:`classify` names the role a graph node plays for structured pruning:

* ``"producer"``: makes a new set of output channels that may be pruned
  (``Dense``, ``Conv1D/2D/3D`` with ``groups=1``, ``SeparableConv1D/2D``).
* ``"depthwise"``: one output per input channel times ``depth_multiplier``.
* ``"normalization"``: per-channel weights on the last axis (BatchNormalization).
* ``"pass"``: channels in, same channels out (activations, dropout, pooling...).
* ``"flatten"``, ``"concat"`` (on the last axis), ``"merge"`` (elementwise).
* ``"mixing"``: reads all channels together (Softmax, LayerNormalization,
  Reshape); what it reads is kept whole.
* ``"opaque"``: anything else, including ``channels_first`` layers, shared
  layers, nested models and subclasses of Keras layers; pruning what it reads is
  refused.

Only layers from ``keras.layers`` itself are recognised, by class name: a user
subclass of ``Conv2D`` may change what its weights mean.

Example:

>>> is_elementwise("relu"), is_elementwise("softmax")
(True, False)
"""

import numbers

PRODUCERS = ("Dense", "Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D")
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
# keras.ops calls serialized in a functional config, by class name.
_ELEMENTWISE_OPS = frozenset(
    (
        "Relu",
        "Relu6",
        "Sigmoid",
        "Tanh",
        "Elu",
        "Selu",
        "Gelu",
        "Silu",
        "Softplus",
        "Softsign",
        "HardSigmoid",
        "HardSilu",
        "LeakyRelu",
        "Negative",
        "Abs",
        "Square",
        "Sqrt",
        "Exp",
    )
)
_BINARY_OPS = frozenset(("Add", "Subtract", "Multiply", "Maximum", "Minimum"))


def is_elementwise(activation) -> bool:
    """Whether a Keras activation (as stored in a config) acts on each channel alone."""
    return isinstance(activation, str) and activation in _ELEMENTWISE_ACTIVATIONS


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
        return _classify_op(layer_config, node)
    if shared or layer_config.get("module") != "keras.layers":
        return "opaque"
    if config.get("data_format", "channels_last") != "channels_last":
        return "opaque"
    if class_name in PRODUCERS:
        return "producer" if config.get("groups", 1) == 1 else "opaque"
    if class_name in DEPTHWISE:
        return "depthwise"
    if class_name == "BatchNormalization":
        axes = config["axis"] if isinstance(config["axis"], list) else [config["axis"]]
        rank = len(layer.input.shape)
        return "normalization" if [axis % rank for axis in axes] == [rank - 1] else "opaque"
    if class_name in _PASS_THROUGH:
        return "pass"
    if class_name == "Activation":
        return "pass" if is_elementwise(config["activation"]) else "mixing"
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


def _classify_op(layer_config, node):
    if not str(layer_config.get("module", "")).startswith("keras.src.ops"):
        return "opaque"
    if any(_is_tensor(leaf) for leaf in _leaves(node.get("kwargs", {}))):
        return "opaque"
    leaves = list(_leaves(node.get("args", []))) + list(_leaves(node.get("kwargs", {})))
    tensors = sum(1 for leaf in leaves if _is_tensor(leaf))
    # Python numbers broadcast over every channel; arrays or other values may not.
    others_are_scalars = all(_is_tensor(leaf) or isinstance(leaf, numbers.Number) for leaf in leaves)
    if not others_are_scalars:
        return "opaque"
    class_name = layer_config["class_name"]
    if class_name in _ELEMENTWISE_OPS and tensors == 1:
        return "pass"
    if class_name in _BINARY_OPS:
        return "pass" if tensors == 1 else "merge"
    return "opaque"


def _is_tensor(leaf):
    return isinstance(leaf, dict) and leaf.get("class_name") == "__keras_tensor__"


def _leaves(structure):
    if _is_tensor(structure) or not isinstance(structure, (dict, list, tuple)):
        yield structure
        return
    values = structure.values() if isinstance(structure, dict) else structure
    for value in values:
        yield from _leaves(value)
