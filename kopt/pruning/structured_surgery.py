"""Builds the smaller model: new layer configs from the plan, weights sliced in NumPy.

The model is rebuilt from its own public config (``keras.Model.from_config`` or
``keras.Sequential.from_config``) with ``filters``/``units`` of pruned layers
lowered and each layer's ``build_config`` dropped, so every layer builds from the
(smaller) tensor it now receives. Weights are then copied layer by layer, matched
by layer name and weight name, keeping the surviving input and output channels.

Example:

>>> import keras, numpy as np
>>> from kopt.pruning.structured_graph import analyze
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="hidden"),
...                           keras.layers.Dense(2, name="head")])
>>> graph = analyze(model)
>>> root = graph.find(graph.layers["hidden"].output_group)
>>> smaller = rebuild(model, graph, {root: np.array([True, False, True, True])})
>>> tuple(smaller.get_layer("head").kernel.shape)
(3, 2)
"""

import copy

import keras
import numpy as np

from kopt.pruning.structured_layers import GATES
from kopt.pruning.structured_layers import channelwise_size_argument
from kopt.pruning.structured_layers import is_transposed
from kopt.pruning.structured_layers import output_width
from kopt.pruning.structured_layers import unit_layers
from kopt.pruning.structured_ops import constant_argument
from kopt.utils.model_graph import model_from_own_config


def rebuild(model, graph, keep_masks):
    """Returns a new model of ``model``'s kind with the channels in ``keep_masks`` only.

    Args:
        model: The model :func:`kopt.pruning.structured_graph.analyze` read.
        graph: Its :class:`~kopt.pruning.structured_graph.ChannelGraph`.
        keep_masks: ``{group root id: bool array}``; groups not listed keep all.

    Returns:
        A new, uncompiled ``keras.Model`` (Sequential if ``model`` is one).

    Raises:
        ValueError: If a weight of a layer being sliced has an unexpected name or shape.
    """
    new_weights = {}
    output_sizes = {}
    for name, info in graph.layers.items():
        sliced = _slice_layer(graph, info, keep_masks)
        if sliced is not None:
            new_weights[name], output_size = sliced
            if output_size is not None:
                output_sizes[name] = output_size
    config = copy.deepcopy(model.get_config())
    for layer_config in config["layers"]:
        layer_config.pop("build_config", None)
        if layer_config["class_name"] == "TimeDistributed":
            layer_config["config"]["layer"].pop("build_config", None)
        name = layer_config["config"].get("name")
        if name in output_sizes and layer_config["class_name"] == "Bidirectional":
            for direction in ("layer", "backward_layer"):
                if direction in layer_config["config"]:
                    layer_config["config"][direction]["config"]["units"] = output_sizes[name]
                    layer_config["config"][direction].pop("build_config", None)
        elif name in output_sizes:
            # A TimeDistributed's size is its inner layer's.
            inner = layer_config["config"]["layer"] if layer_config["class_name"] == "TimeDistributed" else None
            sized = inner["config"] if inner else layer_config["config"]
            key = next(k for k in ("units", "filters", "num_heads") if k in sized)
            sized[key] = output_sizes[name]
        elif layer_config["class_name"] == "Reshape" and graph.layers[name].kind == "pass":
            # It keeps the last axis: its target's last entry follows the channels kept.
            kept = int(graph.keep_positions(graph.layers[name].input_maps[0], keep_masks).sum())
            layer_config["config"]["target_shape"] = [*layer_config["config"]["target_shape"][:-1], kept]
        elif name in graph.layers and graph.layers[name].kind == "constant":
            _slice_constant(layer_config, graph, graph.layers[name], keep_masks)
        elif name in new_weights and graph.layers[name].kind == "normalization":
            # A channel-wise layer that builds its weights from a size argument (LayerScale).
            key = channelwise_size_argument(graph.layers[name].layer, layer_config)
            if isinstance(key, str):
                layer_config["config"][key] = int(np.shape(new_weights[name][0])[0])
    smaller = model_from_own_config(model, config)
    for layer in smaller.layers:
        original = model.get_layer(layer.name)
        if layer.name in new_weights:
            _set_weights(layer, new_weights[layer.name])
        else:
            _set_weights(layer, original.get_weights())
    return smaller


def _slice_constant(layer_config, graph, info, keep_masks):
    """Keeps the entries of a ``keras.ops`` call's per-channel constant that line up with the channels kept."""
    keep = graph.keep_positions(info.input_maps[0], keep_masks)
    if keep.all():
        return
    node = layer_config["inbound_nodes"][0]
    constant = node["args"][constant_argument(node)]["config"]
    constant["value"] = np.asarray(constant["value"])[..., keep].tolist()


def _slice_layer(graph, info, keep_masks):
    """Returns ``(weights, new output size or None)``, or None if nothing changes."""
    kind = info.kind
    if kind not in ("producer", "recurrent", "bidirectional", "depthwise", "normalization", "attention"):
        return None
    layer = info.layer
    if kind == "attention":
        keep_heads = keep_masks.get(graph.find(info.output_group))
        if keep_heads is None or keep_heads.all():
            return None
        return [_slice_heads(layer, v, keep_heads) for v in layer.weights], int(keep_heads.sum())
    keep_in = graph.keep_positions(info.input_maps[0], keep_masks)
    keep_out = None
    if kind in ("producer", "recurrent", "bidirectional"):
        mask = keep_masks.get(graph.find(info.output_group))
        keep_out = mask if mask is not None else np.ones(output_width(layer), bool)
    if keep_in.all() and (keep_out is None or keep_out.all()):
        return None
    if kind == "bidirectional":
        # Its two directions' weights share their names: sliced in order, each as its direction's.
        inner = unit_layers(layer)[0]
        weights = [_slice_recurrent(inner, v.name, np.asarray(v.numpy()), keep_in, keep_out) for v in layer.weights]
        return weights, int(keep_out.sum())
    weights = {}
    owner = unit_layers(layer)[0]  # a TimeDistributed's weights are its inner layer's
    for variable in layer.weights:
        weights[variable.name] = _slice_weight(owner, kind, variable, keep_in, keep_out)
    return [weights[v.name] for v in layer.weights], (int(keep_out.sum()) if keep_out is not None else None)


def _slice_weight(layer, kind, variable, keep_in, keep_out):
    value = np.asarray(variable.numpy())
    name = variable.name
    multiplier = int(layer.get_config().get("depth_multiplier", 1))
    if kind == "normalization" and value.shape == keep_in.shape:
        return value[keep_in]
    if kind == "normalization" and isinstance(layer, keras.layers.PReLU):
        return value[..., keep_in]  # slopes of shape (..., channels), the other axes per position
    if kind == "depthwise" and name == "kernel":
        return value[..., keep_in, :]
    if kind == "depthwise" and name == "bias":
        return value[np.repeat(keep_in, multiplier)]
    if kind == "recurrent":
        return _slice_recurrent(layer, name, value, keep_in, keep_out)
    if kind == "producer" and name == "kernel" and is_transposed(layer):
        return value[..., keep_out, :][..., keep_in]  # (..., out, in)
    if kind == "producer" and name == "kernel":
        return value[..., keep_in, :][..., keep_out]
    if kind == "producer" and name == "depthwise_kernel":
        return value[..., keep_in, :]
    if kind == "producer" and name == "pointwise_kernel":
        return value[..., np.repeat(keep_in, multiplier), :][..., keep_out]
    if kind == "producer" and name == "bias":
        return value[keep_out]
    if value.ndim == 0 or kind == "normalization" and value.ndim > 1:
        return value  # e.g. a seed generator's state
    raise ValueError(
        f"layer {layer.name!r} ({type(layer).__name__}) has weight {variable.path!r} of shape "
        f"{value.shape} that structured pruning does not know how to slice"
    )


def _slice_recurrent(layer, name, value, keep_in, keep_out):
    """An LSTM/GRU/SimpleRNN weight: input rows, and in every gate the units kept (rows too, recurrently)."""
    gates = np.tile(keep_out, GATES[type(layer).__name__])
    if name == "kernel":
        return value[keep_in][:, gates]
    if name == "recurrent_kernel":
        return value[keep_out][:, gates]
    if name == "bias":
        return value[..., gates]
    raise ValueError(
        f"layer {layer.name!r} ({type(layer).__name__}) has weight {name!r} of shape {value.shape} that "
        "structured pruning does not know how to slice"
    )


# MultiHeadAttention's projections, by sublayer name: the axis of a kernel and of a
# bias that runs over the heads (None: not per head).
_HEAD_AXES = {"query": (1, 0), "key": (1, 0), "value": (1, 0), "attention_output": (0, None)}


def _projection(layer, variable):
    parts = variable.path.split("/")
    role = parts[-2] if len(parts) >= 2 else ""
    if role not in _HEAD_AXES or parts[-1] not in ("kernel", "bias"):
        raise ValueError(
            f"layer {layer.name!r} ({type(layer).__name__}) has weight {variable.path!r}, which structured "
            "pruning of attention heads does not know how to slice"
        )
    kernel_axis, bias_axis = _HEAD_AXES[role]
    return role, kernel_axis if parts[-1] == "kernel" else bias_axis


def _slice_heads(layer, variable, keep_heads):
    value = np.asarray(variable.numpy())
    _, axis = _projection(layer, variable)
    return value if axis is None else np.compress(keep_heads, value, axis=axis)


def head_scores(layer, importance):
    """One score per head of a MultiHeadAttention: the L1 (or L2) norm of its projection weights."""
    heads = int(layer.get_config()["num_heads"])
    scores = np.zeros(heads)
    for variable in layer.weights:
        role, axis = _projection(layer, variable)
        if axis is None or not variable.path.endswith("kernel"):
            continue
        value = np.moveaxis(np.asarray(variable.numpy()), axis, 0).reshape(heads, -1)
        scores += np.abs(value).sum(1) if importance != "l2" else (value**2).sum(1)
    return scores if importance != "l2" else np.sqrt(scores)


def _set_weights(layer, weights):
    expected = [tuple(v.shape) for v in layer.weights]
    received = [tuple(np.shape(w)) for w in weights]
    if expected != received:
        raise ValueError(
            f"rebuilt layer {layer.name!r} expects weights of shapes {expected}, "
            f"the pruned weights have shapes {received}"
        )
    layer.set_weights(weights)
