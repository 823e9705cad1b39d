"""Which source entry each entry of a target weight copies, when the two models differ in width.

A weight's axes are not all plain lists of channels, so copying "the first ``n``
entries" of each axis (:mod:`kopt.transfer.overlap`) is only right on some of
them. Two cases need more:

* **Gates and groups.** An LSTM's kernel holds its four gates' columns one after another on
  the last axis (``[i | f | c | o]``, ``units`` each; a GRU three, a ConvLSTM
  four). Between an LSTM of 32 units and one of 64, the first 128 columns are
  all four gates of the one and two gates of the other. :func:`gate_counts`
  says how many gates each weight of a layer holds, and the copy is made with
  the last axis split into ``(gates, units)``, so unit ``u`` of gate ``k`` lands
  on unit ``u`` of gate ``k``. A grouped convolution's filters are split the same
  way into its groups.
* **Input channels.** The rows of a kernel follow the channels of the tensor the
  layer reads, and that tensor need not list the channels of one layer in order:
  a ``Flatten`` repeats them per position (``((h * W) + w) * C + c``), a
  ``Concatenate`` puts another layer's after them, a ``Bidirectional`` repeats
  its units for the backward direction. When the layer before is wider in one
  model, entry ``p`` of the source is not entry ``p`` of the target. The
  channel graph of structured pruning (:func:`kopt.pruning.structured_graph.analyze`)
  names every entry by the layer that made it and its channel there
  (:func:`channel_keys`); :func:`input_positions` pairs the entries that carry
  the same channel of the same layer, the ``k``-th occurrence with the ``k``-th
  (after a ``Flatten`` of grids of other sizes they cannot be paired, and
  :func:`repeat_mismatch` says so).

Example:

>>> import numpy as np
>>> source = [(("conv",), 0), (("conv",), 1)] * 2      # 2 channels flattened over 2 positions
>>> target = [(("conv",), 0), (("conv",), 1), (("conv",), 2)] * 2
>>> input_positions(source, target).tolist()
[0, 1, -1, 2, 3, -1]
"""

from collections.abc import Mapping
from collections.abc import Sequence

import keras
import numpy as np

from kopt.pruning.structured_graph import analyze
from kopt.pruning.structured_layers import TRANSPOSED
from kopt.utils.layer_kinds import recurrent_directions

__all__ = [
    "FIXED",
    "InputRows",
    "channel_keys",
    "gate_counts",
    "group_signature",
    "input_axis",
    "input_positions",
    "repeat_mismatch",
]

FIXED = ("<fixed>",)  # the signature of channels no layer of the model made (its inputs)
_CONV_LSTM = ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
_GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1, **dict.fromkeys(_CONV_LSTM, 4)}
# Weights whose axis -2 runs over the channels the layer reads, by channel-graph kind.
_ROW_WEIGHTS = {
    "producer": ("kernel", "depthwise_kernel", "pointwise_kernel"),  # pointwise: depth_multiplier 1 only
    "recurrent": ("kernel",),
    "bidirectional": ("kernel",),
    "depthwise": ("kernel",),
}


def group_signature(graph, root: int) -> tuple:
    """The names of the layers that make a channel group (sorted), or :data:`FIXED`."""
    if root < 0:
        return FIXED
    return tuple(sorted(next(group for group in graph.groups() if group.id == root).producers))


def channel_keys(graph, channel_map) -> list:
    """``(producers of the entry's group, channel index)`` for each entry of a channel map."""
    signatures = {}
    keys = []
    for root, index in zip(graph.roots_of(channel_map).tolist(), channel_map.index.tolist()):
        if root not in signatures:
            signatures[root] = group_signature(graph, root)
        keys.append((signatures[root], index))
    return keys


def input_positions(source_keys: Sequence[tuple], target_keys: Sequence[tuple]) -> np.ndarray:
    """For each target entry, the source entry carrying the same channel, or -1.

    Two entries carry the same channel when their groups share a producer (a
    group grows when a merge joins layers, so the producers of a channel may
    differ between the models) and their channel index is the same; the
    ``k``-th such entry of the target takes the ``k``-th of the source.

    Args:
        source_keys: :func:`channel_keys` of the source layer's input, with the
            producers renamed to the target's names.
        target_keys: The same for the target layer's input.

    Returns:
        An int64 array as long as ``target_keys``.
    """
    where = {}
    for position, (producers, index) in enumerate(source_keys):
        for producer in producers:
            where.setdefault((producer, index), []).append(position)
    seen = {}
    positions = np.full(len(target_keys), -1, np.int64)
    for position, key in enumerate(target_keys):
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        producers, index = key
        for producer in producers:
            candidates = where.get((producer, index), ())
            if occurrence < len(candidates):
                positions[position] = candidates[occurrence]
                break
    return positions


def repeat_mismatch(source_keys: Sequence[tuple], target_keys: Sequence[tuple]) -> str | None:
    """Why the entries of two inputs cannot be paired, or None.

    A channel that comes back once per position after a ``Flatten`` must come
    back as often on both sides: the ``k``-th occurrence is a position, and a
    grid of another size puts position ``k`` elsewhere.

    Example:

    >>> repeat_mismatch([(("conv",), 0)] * 4, [(("conv",), 0)] * 9)
    "channel 0 of 'conv' occurs 9 times in the target's input and 4 in the source's (a Flatten of another spatial size?)"
    """
    found = {}
    for producers, index in source_keys:
        for producer in producers:
            found[(producer, index)] = found.get((producer, index), 0) + 1
    seen = {}
    for key in target_keys:
        seen[key] = seen.get(key, 0) + 1
    for (producers, index), count in seen.items():
        for producer in producers:
            other = found.get((producer, index), 0)
            if other and other != count:
                return (
                    f"channel {index} of {producer!r} occurs {count} times in the target's input and {other} in "
                    "the source's (a Flatten of another spatial size?)"
                )
    return None


def gate_counts(layer: keras.layers.Layer) -> Mapping[int, int]:
    """``{id(variable): blocks}`` for each weight whose last axis holds blocks one after another.

    The gates of an LSTM, GRU and SimpleRNN (also as a ``Bidirectional``'s
    directions) and of a ConvLSTM1D/2D/3D, and the groups of a grouped
    convolution's filters; Keras' own classes only (a subclass may hold other
    weights).
    """
    groups = layer.get_config().get("groups", 1) if type(layer).__module__.split(".")[0] == "keras" else 1
    if isinstance(groups, int) and groups > 1:
        return {id(variable): groups for variable in layer.weights}
    found = {}
    cells = recurrent_directions(layer) or ([layer] if type(layer).__name__ in _CONV_LSTM else [])
    for cell in cells:
        if type(cell).__module__.split(".")[0] != "keras":
            continue
        for variable in cell.weights:
            found[id(variable)] = _GATES[type(cell).__name__]
    return found


def input_axis(kind: str, class_name: str, weight_name: str, shape: Sequence[int], channels: int) -> int | None:
    """The axis of a weight that runs over the channels its layer reads, or None.

    Args:
        kind: The layer's channel-graph kind (:func:`kopt.pruning.structured_layers.classify`).
        class_name: The layer's class name.
        weight_name: The weight's name within the layer (``kernel``, ``forward_lstm/lstm_cell/kernel``).
        shape: The weight's shape.
        channels: The length of the layer input's last axis.

    Returns:
        The axis (negative), or None where no axis follows the input
        channels one to one (a pointwise kernel or depthwise bias after a
        depth multiplier above 1, a recurrent kernel, a Dense's bias).
    """
    last = weight_name.split("/")[-1]
    if class_name in TRANSPOSED and last == "kernel":
        # (..., out, in): the channels it reads are its kernel's last axis.
        return -1 if len(shape) >= 2 and shape[-1] == channels else None
    if last in _ROW_WEIGHTS.get(kind, ()) and len(shape) >= 2 and shape[-2] == channels:
        return -2
    per_channel = kind in ("normalization", "depthwise") or class_name == "LayerNormalization"
    if per_channel and len(shape) == 1 and shape[0] == channels:
        return -1
    return None


class InputRows:
    """Matches the input rows of paired layers of two models through their channel graphs.

    Args:
        source: The model copied from.
        target: The model copied into.
        renames: ``{source layer name: target layer name}`` of the paired layers
            (the identity when layers pair by name).
    """

    def __init__(self, source: keras.Model, target: keras.Model, renames: Mapping[str, str]):
        self._source, self.source_why = _graph(source)
        self._target, self.target_why = _graph(target)
        self._renames = dict(renames)

    def positions(self, source_layer, target_layer, weight_name: str, source_shape, target_shape):
        """``(axis, positions)`` for one weight of a paired layer, a reason they cannot be paired, or None.

        None where no axis of the weight follows its layer's input channels,
        where a channel graph does not know the layer (a model it cannot read, a
        layer inside a nested model or called twice), or where the two layers
        read channels made by different layers: rows then go by index.
        """
        source_info = _info(self._source, source_layer)
        target_info = _info(self._target, target_layer)
        if source_info is None or target_info is None:
            return None
        source_map, target_map = source_info.input_maps[0], target_info.input_maps[0]
        axis = input_axis(target_info.kind, target_info.class_name, weight_name, target_shape, target_map.size)
        if axis is None or axis != input_axis(
            source_info.kind, source_info.class_name, weight_name, source_shape, source_map.size
        ):
            return None
        source_keys = [
            (tuple(sorted(self._renames.get(name, name) for name in producers)), index)
            for producers, index in channel_keys(self._source, source_map)
        ]
        target_keys = channel_keys(self._target, target_map)
        if {producers for producers, _ in source_keys} != {producers for producers, _ in target_keys}:
            return None  # read from other layers (one side behind a nested model, say): nothing to match by
        return repeat_mismatch(source_keys, target_keys) or (axis, input_positions(source_keys, target_keys))


def _graph(model):
    try:
        return analyze(model), ""
    except ValueError as error:
        return None, str(error)


def _info(graph, layer):
    info = None if graph is None else graph.layers.get(layer.name)
    if info is None or info.layer is not layer or info.kind == "opaque" or len(info.input_maps) != 1:
        return None
    return info
