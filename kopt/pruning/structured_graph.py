"""The channel dependency graph behind structured pruning.

Walks a functional (or Sequential) Keras model through the public
``keras.Model.get_config()`` data (each layer's ``inbound_nodes`` name the layer,
node and tensor they read) and tracks, for every tensor, where each entry of its
last (channel) axis comes from. A :class:`ChannelMap` holds that as two arrays:
``group[c]`` is the id of the output-channel set of a Conv/Dense layer (``-1`` for
channels no layer here may remove, such as model inputs) and ``index[c]`` the
filter within it. Flatten tiles the map over spatial positions (channels_last
order: ``((h * W) + w) * C + c``), Concatenate joins maps, DepthwiseConv repeats
each entry ``depth_multiplier`` times, and elementwise merges (Add, Multiply...)
unite the groups they combine, so coupled layers are pruned with one shared
channel set. Anything that reads all channels at once (Softmax, LayerNorm,
Reshape, the model outputs) freezes the groups it receives; that is always
correct, since a layer whose inputs keep every channel computes what it did.

Example:

>>> import keras
>>> inputs = keras.Input((8, 8, 3))
>>> x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
>>> outputs = keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x))
>>> graph = analyze(keras.Model(inputs, outputs))
>>> [sorted(group.producers) for group in graph.groups() if not group.frozen]
[['conv']]
"""

import dataclasses
import math

import keras
import numpy as np

from kopt.pruning.structured_layers import classify
from kopt.pruning.structured_layers import is_elementwise
from kopt.pruning.structured_layers import output_width
from kopt.pruning.structured_layers import unit_layers
from kopt.utils.model_graph import output_refs
from kopt.utils.model_graph import tensor_refs
from tflite_export.cloning import inline_nested_models


@dataclasses.dataclass
class ChannelMap:
    """Origin of each entry of a tensor's last axis: ``(group[c], index[c])``."""

    group: np.ndarray
    index: np.ndarray

    @classmethod
    def fixed(cls, size):
        return cls(np.full(size, -1, np.int64), np.arange(size, dtype=np.int64))

    @classmethod
    def new_group(cls, group_id, size):
        return cls(np.full(size, group_id, np.int64), np.arange(size, dtype=np.int64))

    @property
    def size(self):
        return int(self.group.size)

    def tile(self, times):
        return ChannelMap(np.tile(self.group, times), np.tile(self.index, times))

    def repeat(self, times):
        return ChannelMap(np.repeat(self.group, times), np.repeat(self.index, times))

    @classmethod
    def concat(cls, maps):
        return cls(np.concatenate([m.group for m in maps]), np.concatenate([m.index for m in maps]))


@dataclasses.dataclass
class Group:
    """One set of channels that must be kept or removed together."""

    id: int
    size: int
    producers: list
    frozen: list  # reasons, empty if prunable


@dataclasses.dataclass
class LayerInfo:
    """What the walk learned about one graph node: its role and its input channel maps."""

    layer: object  # None for a keras.ops call
    kind: str
    input_maps: list
    name: str = ""
    class_name: str = ""
    output_group: int = -1


class ChannelGraph:
    """Result of :func:`analyze`: groups, per-layer roles and the layers that block pruning."""

    def __init__(self, model):
        self.model = model
        self.layers = {}
        self.blockers = []  # (layer name, class name, group ids) for layers kopt cannot slice
        self._parent = []
        self._size = []
        self._producers = []
        self._frozen = []

    def new_group(self, size, producer):
        self._parent.append(len(self._parent))
        self._size.append(size)
        self._producers.append([producer])
        self._frozen.append([])
        return len(self._parent) - 1

    def size_of(self, group_id):
        return self._size[group_id]

    def find(self, group_id):
        while self._parent[group_id] != group_id:
            self._parent[group_id] = self._parent[self._parent[group_id]]
            group_id = self._parent[group_id]
        return group_id

    def union(self, first, second):
        first, second = self.find(first), self.find(second)
        if first != second:
            self._parent[second] = first
            self._producers[first] += self._producers[second]
            self._frozen[first] += self._frozen[second]

    def freeze(self, channel_map, reason):
        for group_id in set(channel_map.group[channel_map.group >= 0].tolist()):
            root = self.find(group_id)
            if reason not in self._frozen[root]:
                self._frozen[root].append(reason)

    def groups(self):
        """The canonical groups, in order of their first producer."""
        roots = sorted({self.find(g) for g in range(len(self._parent))})
        return [Group(r, self._size[r], list(self._producers[r]), list(self._frozen[r])) for r in roots]

    def nothing_prunable(self):
        """Why no channel of the model can go, or None if some group can: every group's reasons,
        and the layers the walk could not trace through."""
        groups = self.groups()
        if any(not group.frozen for group in groups):
            return None
        fixed = [f"{', '.join(group.producers)}: {'; '.join(group.frozen)}" for group in groups]
        opaque = [f"{info.name!r} ({info.class_name})" for info in self.layers.values() if info.kind == "opaque"]
        return (
            f"model {self.model.name!r} has no channels that can be removed"
            + (f"; fixed groups: {' | '.join(fixed)}" if fixed else "; no layer produces channels that can go")
            + (f"; layers structured pruning cannot trace through: {', '.join(opaque)}" if opaque else "")
        )

    def roots_of(self, channel_map):
        """Root group id of each entry of ``channel_map`` (-1 for fixed channels)."""
        roots = np.array([self.find(g) for g in range(len(self._parent))] + [-1], np.int64)
        return roots[channel_map.group]  # group -1 picks the trailing -1

    def keep_positions(self, channel_map, keep_masks):
        """Boolean mask of the entries of ``channel_map`` that survive ``keep_masks``."""
        roots = self.roots_of(channel_map)
        keep = np.ones(channel_map.size, bool)
        for root, mask in keep_masks.items():
            where = roots == root
            keep[where] = mask[channel_map.index[where]]
        return keep


def analyze(model):
    """Builds the :class:`ChannelGraph` of ``model``.

    Args:
        model: A built functional or Sequential ``keras.Model``.

    Returns:
        A :class:`ChannelGraph`.

    Raises:
        ValueError: For a subclassed or unbuilt model, or one holding wrapper layers.
    """
    view, config = functional_config(model)
    graph = ChannelGraph(model)
    layers = {layer.name: layer for layer in view.layers}
    maps = {}
    for layer_config, node_index, node in _topological(config["layers"]):
        name = layer_config["name"]
        layer = layers.get(name)  # None for a keras.ops call
        if layer is not None:
            _refuse_wrapper(layer)
        if node is None:  # an InputLayer
            size = int(layer.output.shape[-1]) if layer.output.shape else 1
            maps[(name, 0, 0)] = ChannelMap.fixed(size)
            continue
        args = tensor_refs(node.get("args", []))
        inputs = [maps.get(key) or ChannelMap.fixed(_last_dim(shape)) for key, shape in args]
        kind = classify(layer, layer_config, node, shared=len(layer_config["inbound_nodes"]) > 1)
        for key, _ in tensor_refs(node.get("kwargs", {})):
            graph.freeze(maps.get(key) or ChannelMap.fixed(1), f"passed as a keyword argument to {name!r}")
        node_info = LayerInfo(layer, kind, inputs, name=name, class_name=layer_config["class_name"])
        output = _propagate(graph, node_info, [shape for _, shape in args])
        if output is not None:
            maps[(name, node_index, 0)] = output
    for name, node_index, tensor_index in output_refs(config["output_layers"]):
        graph.freeze(maps.get((name, node_index, tensor_index), ChannelMap.fixed(0)), "model output")
    return graph


def functional_config(model):
    """Returns ``(functional_model, config)``; a Sequential is viewed as functional."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model. Received: model of type {type(model).__name__}")
    if isinstance(model, keras.Sequential):
        try:
            model = keras.Model(model.inputs, model.outputs, name=model.name)
        except (AttributeError, ValueError) as err:
            raise ValueError(
                f"Sequential model {model.name!r} is not built; give it a keras.Input first ({err})"
            ) from err
    try:
        config = model.get_config()
    except NotImplementedError:
        config = {}
    if not isinstance(config, dict) or not {"layers", "input_layers", "output_layers"} <= set(config):
        raise ValueError(
            f"structured pruning needs a functional or Sequential model; model {model.name!r} is a "
            f"subclassed {type(model).__name__} whose graph cannot be read. Rebuild it with "
            "keras.Model(inputs, outputs)."
        )
    return model, config


def without_nested_models(model: keras.Model) -> keras.Model:
    """``model`` with the layers of nested Sequential/functional models called in the outer graph.

    A backbone used as one layer (``base = keras.applications.MobileNetV2(include_top=False)``,
    then ``base(inputs)``, the usual transfer-learning layout) hides its channels
    from the outer graph; inlined, its convolutions are pruned like the outer ones
    and the pruned model is flat. Layer names are kept (they must be unique across
    the nesting levels). A model without nested models is returned as it is.
    """
    if not any(isinstance(layer, keras.Model) for layer in model.layers):
        return model
    return inline_nested_models(
        model, action="prune channels of", advice="Rebuild it with keras.Model(inputs, outputs) first."
    )


def _refuse_wrapper(layer):
    module = type(layer).__module__ or ""
    if module.startswith("kopt"):
        raise ValueError(
            f"layer {layer.name!r} is a kopt wrapper ({type(layer).__name__}); call "
            "kopt.pruning.strip_pruning(model) first, then prune channels of the plain model"
        )
    if isinstance(layer, keras.layers.Wrapper) and not isinstance(layer, keras.layers.TimeDistributed):
        raise ValueError(
            f"layer {layer.name!r} is a wrapper layer ({type(layer).__name__}); structured pruning and "
            "widen trace channels through plain layers only. Unwrap it first."
        )


def _propagate(graph, info, shapes):
    """Records ``info`` in ``graph``; returns the map of its output, None if fixed."""
    graph.layers[info.name] = info
    kind, inputs, name = info.kind, info.input_maps, info.name
    if kind in ("producer", "recurrent", "bidirectional"):
        bidirectional = kind == "bidirectional"
        config = unit_layers(info.layer)[0].get_config()  # a Bidirectional's units are its directions'
        size = output_width(info.layer)
        info.output_group = graph.new_group(size, name)
        output = ChannelMap.new_group(info.output_group, size)
        for key in ("activation", "recurrent_activation"):
            if key in config and not is_elementwise(config[key]):
                graph.freeze(output, f"{name!r} applies {key} {config[key]!r} across channels")
        # Unit i of both directions is one channel; concatenated, it appears in each half.
        return ChannelMap.concat([output, output]) if bidirectional and info.layer.merge_mode == "concat" else output
    if kind == "depthwise":
        return inputs[0].repeat(int(unit_layers(info.layer)[0].get_config()["depth_multiplier"]))
    if kind == "attention":
        # Its heads are pruned as a group of their own; query, key and value are
        # read whole, and its output keeps its width.
        for channel_map in inputs:
            graph.freeze(channel_map, f"feeds {name!r} ({info.class_name}), which mixes channels")
        info.output_group = graph.new_group(int(info.layer.get_config()["num_heads"]), name)
        return None
    if kind in ("normalization", "pass", "constant"):
        return inputs[0]
    if kind == "flatten":
        spatial = shapes[0][2 if info.class_name == "TimeDistributed" else 1 : -1]  # the time axis stays
        if any(dim is None for dim in spatial):
            graph.freeze(inputs[0], f"{name!r} flattens a tensor of unknown spatial shape")
            return None
        return inputs[0].tile(math.prod(spatial))
    if kind == "concat":
        return ChannelMap.concat(inputs)
    if kind == "merge":
        return _merge(graph, info, inputs)
    for channel_map in inputs:
        if kind == "mixing":
            graph.freeze(channel_map, f"feeds {name!r} ({info.class_name}), which mixes channels")
        else:
            graph.blockers.append((name, info.class_name, set(channel_map.group[channel_map.group >= 0].tolist())))
    return None


def _merge(graph, info, inputs):
    """Unites the groups an elementwise merge combines, or freezes them if misaligned."""
    first = inputs[0]
    reason = f"merged by {info.name!r} ({info.class_name}) with channels that do not line up"
    for other in inputs[1:]:
        if other.size != first.size:
            for channel_map in inputs:
                graph.freeze(channel_map, reason)
            return max(inputs, key=lambda m: m.size)
        pairs = set(zip(first.group.tolist(), other.group.tolist(), strict=True))
        for group_a, group_b in pairs:
            if group_a < 0 or group_b < 0:
                graph.freeze(
                    ChannelMap(np.array([group_a, group_b]), np.zeros(2, np.int64)),
                    f"added by {info.name!r} to channels that cannot be removed",
                )
                continue
            where_a, where_b = first.group == group_a, other.group == group_b
            aligned = np.array_equal(where_a, where_b) and np.array_equal(first.index[where_a], other.index[where_b])
            if aligned and graph.size_of(group_a) == graph.size_of(group_b):
                graph.union(group_a, group_b)
            else:
                graph.freeze(ChannelMap.concat([first, other]), reason)
    return first


def _last_dim(shape):
    return int(shape[-1]) if shape and shape[-1] is not None else 1


def _topological(layer_configs):
    """``(layer config, node index, node or None)`` with every node after those it reads.

    Sorted per call (node), not per layer: a shared layer may read its own output.
    """
    pending = []
    for layer_config in layer_configs:
        nodes = layer_config.get("inbound_nodes") or [None]
        for node_index, node in enumerate(nodes):
            needs = {(ref[0][0], ref[0][1]) for ref in tensor_refs(node)} if node else set()
            pending.append((layer_config, node_index, node, needs))
    ordered, done = [], set()
    while pending:
        ready = [entry for entry in pending if entry[3] <= done]
        if not ready:
            raise ValueError("the model's graph has a cycle or reads a layer that is not in it")
        for entry in ready:
            ordered.append(entry[:3])
            done.add((entry[0]["name"], entry[1]))
        pending = [entry for entry in pending if (entry[0]["name"], entry[1]) not in done]
    return ordered


def check_blockers(graph, removed_by_group):
    """Raises if a layer structured pruning cannot slice would receive fewer channels."""
    pruned_roots = {group_id for group_id, removed in removed_by_group.items() if removed}
    for name, class_name, group_ids in graph.blockers:
        hit = sorted({graph.find(g) for g in group_ids} & pruned_roots)
        if hit:
            producers = sorted(n for g in graph.groups() if g.id in hit for n in g.producers)
            raise ValueError(
                f"layer {name!r} ({class_name}) would receive fewer channels from {producers}, and "
                f"structured pruning cannot slice a {class_name}; leave those layers out with "
                "layers=[...] or fraction={name: value}"
            )
