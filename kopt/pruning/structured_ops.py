"""What a ``keras.ops`` call in a functional graph does to channels (see :mod:`structured_layers`).

A functional model's config records each ``keras.ops`` call by class name with
the arguments it was given: Keras tensors, Python numbers, and constants
serialized as ``{"class_name": "__tensor__", "config": {"value": ...}}``. An
elementwise function of one tensor passes channels on; a binary op of two
tensors merges them; a binary op of a tensor and a constant passes them on when
the constant has one value for every channel, and is a ``"constant"`` node,
whose constant is sliced with the channels, when it has one value per channel.
"""

import numbers

import numpy as np

__all__ = ["classify_op", "constant_argument"]

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


def classify_op(layer_config: dict, node: dict) -> str:
    """The role of one ``keras.ops`` call of a functional config (``"pass"``, ``"merge"``,
    ``"constant"`` or ``"opaque"``), from its class name and the arguments it was given.

    Example:

    >>> x = {"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "keras_history": ["d", 0, 0]}}
    >>> op = {"class_name": "Multiply", "module": "keras.src.ops.numpy"}
    >>> classify_op(op, {"args": [x, 2.0]}), classify_op(op, {"args": [x, x]})
    ('pass', 'merge')
    """
    if not str(layer_config.get("module", "")).startswith("keras.src.ops"):
        return "opaque"
    if any(_is_tensor(leaf) for leaf in _leaves(node.get("kwargs", {}))):
        return "opaque"
    leaves = list(_leaves(node.get("args", []))) + list(_leaves(node.get("kwargs", {})))
    class_name = layer_config["class_name"]
    if class_name in _BINARY_OPS and len(leaves) == 2 and sum(map(_is_constant, leaves)) == 1:
        tensor, constant = sorted(leaves, key=_is_constant)  # the constant last
        return _constant_role(tensor, constant) if _is_tensor(tensor) else "opaque"
    tensors = sum(1 for leaf in leaves if _is_tensor(leaf))
    # Python numbers broadcast over every channel; arrays or other values may not.
    others_are_scalars = all(_is_tensor(leaf) or isinstance(leaf, numbers.Number) for leaf in leaves)
    if not others_are_scalars:
        return "opaque"
    if class_name in _ELEMENTWISE_OPS and tensors == 1:
        return "pass"
    if class_name in _BINARY_OPS:
        return "pass" if tensors == 1 else "merge"
    return "opaque"


def _constant_role(tensor, constant):
    """``"pass"`` for a constant broadcast over the channels, ``"constant"`` for one value per channel."""
    shape = np.shape(constant["config"]["value"])
    channels = (tensor["config"].get("shape") or [None])[-1]
    if not shape or shape[-1] == 1:
        return "pass"
    return "constant" if channels is not None and shape[-1] == channels else "opaque"


def constant_argument(node):
    """The position of the serialized constant among a ``"constant"`` node's ``args``."""
    for position, leaf in enumerate(node.get("args", [])):
        if _is_constant(leaf):
            return position
    raise ValueError(f"the node has no constant argument: {node!r}")


def _is_constant(leaf):
    return isinstance(leaf, dict) and leaf.get("class_name") == "__tensor__"


def _is_tensor(leaf):
    return isinstance(leaf, dict) and leaf.get("class_name") == "__keras_tensor__"


def _leaves(structure):
    if _is_tensor(structure) or _is_constant(structure) or not isinstance(structure, (dict, list, tuple)):
        yield structure
        return
    values = structure.values() if isinstance(structure, dict) else structure
    for value in values:
        yield from _leaves(value)
