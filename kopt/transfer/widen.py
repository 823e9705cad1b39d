"""Net2WiderNet: more units or filters in a trained layer, the model's outputs unchanged.

:func:`widen` grows one ``Dense``, ``Conv1D``, ``Conv2D``, ``Conv3D``, ``LSTM``,
``GRU`` or ``SimpleRNN`` layer, or a ``Bidirectional`` around one of the last
three (each direction), from ``n`` to ``new_units`` units. The new units
copy randomly chosen old ones, and every layer reading them divides its incoming
weights by how many copies each old unit now has (:mod:`kopt.transfer.net2net`
has the maths), so the widened model computes what the original did until it
trains. Between the
widened layer and its readers the channels may pass through elementwise
activations (in the layer or as ``ReLU``/``Activation`` layers and
``keras.ops`` calls), ``BatchNormalization`` (its gamma, beta, mean and
variance are copied with the channels), dropout, pooling, padding, ``Flatten``
(the readers' rows are copied per position), ``Concatenate`` and depthwise
convolutions. The readers may be ``Dense``, convolutions (separable ones too),
depthwise convolutions and recurrent layers. A recurrent unit is copied in every
gate, and its recurrent kernel's rows are divided as any reader's, so each copy
keeps the state of the unit it copies. A ``Bidirectional`` (merged by concat,
sum, ave or mul) copies unit ``g(j)`` in both directions, so unit ``j`` of the
merged output, or of each half of a concatenated one, copies unit ``g(j)``.

Layers whose outputs meet in an ``Add``, ``Multiply`` or other elementwise
merge (a residual stream, a squeeze-and-excitation gate) widen together:
naming any of them widens every one with the same map ``g``, so the merge
sees each old channel copied the same way on all its inputs, and the layers
after it divide as above. A layer that reads the channels it adds to
(``x + dense(x)``) gets both: its rows divided, its columns copied.

What cannot be widened is refused with a ``ValueError`` naming the layer, the
argument and its value, before any work: a layer whose output is a model
output, is merged with the model's input or with a layer widen cannot grow, or
reaches a layer that mixes channels or whose weights kopt cannot resize
(``Softmax``, ``LayerNormalization``, a ``Reshape`` of the last axis, attention,
``PReLU``, a layer called twice, a nested model); a recurrent layer that returns
its state or is stateful; a ``Bidirectional`` with ``merge_mode=None``, around
another layer, or whose directions differ; and ``new_units`` not above the
current width.

The model is rebuilt through kopt's one cloning walker
(:func:`tflite_export.cloning.clone_graph_model`) and its channels are traced by
structured pruning's graph (:func:`kopt.pruning.structured_graph.analyze`):
widening is shrinking in reverse. The result is a new model of plain Keras
layers, compiled like the original if it was; the original is left alone.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu", name="hidden"),
...                          keras.layers.Dense(2, name="head")])
>>> wider = widen(model, "hidden", 5)
>>> wider.get_layer("hidden").units, tuple(wider.get_layer("head").kernel.shape)
(5, (5, 2))
>>> x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
>>> bool(np.allclose(wider.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5))
True
"""

import numbers

import keras
import numpy as np

from kopt.pruning.structured_graph import analyze
from kopt.pruning.structured_layers import channelwise_size_argument
from kopt.pruning.structured_layers import is_transposed
from kopt.pruning.structured_layers import output_width
from kopt.transfer.alignment import channel_keys
from kopt.transfer.alignment import group_signature
from kopt.transfer.net2net import match_positions
from kopt.transfer.net2net import replication_counts
from kopt.transfer.net2net import replication_map
from kopt.transfer.widen_weights import READER_KINDS
from kopt.transfer.widen_weights import reader_weights
from kopt.transfer.widen_weights import widened_weights
from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_unshared
from tflite_export.cloning import require_graph_model

__all__ = ["WIDENABLE_LAYERS", "widen"]

WIDENABLE_LAYERS = ("Dense", "Conv1D", "Conv2D", "Conv3D", "LSTM", "GRU", "SimpleRNN", "Bidirectional")
_GROWING_KINDS = ("producer", "recurrent", "bidirectional")  # roles of layers that make the channels widen adds


def widen(
    model: keras.Model, layer_name: str, new_units: int, *, seed: int = 0, noise_stddev: float = 0.0
) -> keras.Model:
    """Returns a copy of ``model`` whose layer ``layer_name`` has ``new_units`` units (or filters).

    Args:
        model: A built Sequential or functional ``keras.Model`` of plain layers.
        layer_name: A layer of :data:`WIDENABLE_LAYERS` in ``model`` (not
            inside a nested model).
        new_units: The new ``units`` (``filters``), above the current one.
        seed: Seeds the choice of the units the new ones copy (and the noise).
        noise_stddev: Gaussian noise added to the new units' kernel columns, as
            a fraction of the kernel's standard deviation, to break the copies'
            symmetry (Net2Net suggests a little). 0 (default) adds none, so the
            outputs equal the original's; above 0 they only nearly do.

    Returns:
        A new model (Sequential if ``model`` is) with the widened layer and
        the readers' weights adjusted; ``model`` is not changed.

    Raises:
        ValueError: Naming the layer, argument and value, for a bad argument or
            a layer that cannot be widened (see the module docstring).
    """
    require_graph_model(model, action="widen", advice="Rebuild it with keras.Model(inputs, outputs) first.")
    _require_plain_layers(model)
    if not isinstance(noise_stddev, numbers.Real) or not 0 <= noise_stddev < float("inf"):
        raise ValueError(f"noise_stddev must be a finite number >= 0. Received: noise_stddev={noise_stddev!r}")
    graph = analyze(model)
    info = _widened_info(model, graph, layer_name)
    units = output_width(info.layer)
    if isinstance(new_units, bool) or not isinstance(new_units, numbers.Integral) or new_units <= units:
        raise ValueError(
            f"new_units must be an integer above the {units} {_noun(info)} of layer {layer_name!r} "
            f"({info.class_name}). Received: new_units={new_units!r}"
        )
    root = graph.find(info.output_group)
    producers = _require_widenable_group(graph, info, root)
    rng = np.random.default_rng(seed)
    mapping = replication_map(units, int(new_units), rng=rng)
    counts = replication_counts(mapping, units)
    readers = [other for other in graph.layers.values() if other.layer is not None and _reads(graph, other, root)]
    transposed = [other.name for other in readers if is_transposed(other.layer)]
    if transposed:
        raise ValueError(
            f"Cannot widen layer {layer_name!r} ({info.class_name}): transposed convolution(s) {transposed} read its "
            f"channels, and widen does not resize a transposed kernel. Received: layer_name={layer_name!r}"
        )
    widened_ids = {id(producer.layer) for producer in producers}
    # Readers with weights, and those whose config names the channel count (a Reshape to (1, 1, C)).
    rebuilt = widened_ids | {
        id(other.layer) for other in readers if other.layer.weights or other.class_name == "Reshape"
    }

    def layer_fn(layer):
        if id(layer) not in rebuilt:
            return copy_unshared(layer)
        config = layer.get_config()
        if isinstance(layer, keras.layers.Bidirectional):
            for direction in ("layer", "backward_layer"):
                config[direction]["config"]["units"] = (
                    int(new_units) if id(layer) in widened_ids else output_width(layer)
                )
                config[direction].pop("build_config", None)  # built on its (maybe wider) input when called
        elif id(layer) in widened_ids:
            config["units" if "units" in config else "filters"] = int(new_units)
        else:
            _resize_channelwise(layer, config, graph, root, units, int(new_units))
        return type(layer).from_config(config)

    wider = clone_graph_model(
        model, layer_fn, action="widen", advice="Rebuild it with keras.Model(inputs, outputs) first."
    )
    new_graph = analyze(wider)
    new_root = new_graph.find(new_graph.layers[layer_name].output_group)
    noise = float(noise_stddev)
    reading = {other.name for other in readers}
    for producer in producers:
        if producer.name not in reading:
            _set(new_graph, producer.name, widened_weights(producer.layer, mapping, rng=rng, noise_stddev=noise))
    for old in readers:
        if not old.layer.weights:
            continue
        new = new_graph.layers[old.name]
        if old.kind == "pass":  # weights that do not run over the channels (a PReLU's one shared slope)
            _set(new_graph, old.name, old.layer.get_weights())
            continue
        if old.kind not in READER_KINDS:
            raise ValueError(f"Layer {old.name!r} ({old.class_name}) reads the widened channels but has weights "
                             f"widen cannot resize. Received: layer_name={layer_name!r}")  # fmt: skip
        old_keys = channel_keys(graph, old.input_maps[0])
        new_keys = channel_keys(new_graph, new.input_maps[0])
        widened = group_signature(graph, root)
        positions = match_positions(
            old_keys, new_keys, lambda key: (key[0], int(mapping[key[1]])) if key[0] == widened else key
        )
        is_widened = new_graph.roots_of(new.input_maps[0]) == new_root
        divisor = np.where(is_widened, counts[mapping[np.where(is_widened, new.input_maps[0].index, 0)]], 1)
        weights = reader_weights(
            old.layer, old.kind, positions=positions, divisor=divisor.astype(np.float64), old_size=len(old_keys)
        )
        if id(old.layer) in widened_ids:
            # It reads the channels and adds to them (``x + dense(x)``): wider rows, then wider columns.
            weights = widened_weights(old.layer, mapping, rng=rng, noise_stddev=noise, values=weights)
        _set(new_graph, old.name, weights)
    return wider


def _require_plain_layers(model):
    for layer in model.layers:
        # kopt's training wrappers; the channel graph refuses other wrappers, naming them.
        if (type(layer).__module__ or "").startswith("kopt"):
            raise ValueError(
                f"widen needs a model of plain layers; layer {layer.name!r} is a {type(layer).__name__}. Strip "
                "kopt's wrappers first (kopt.pruning.strip_pruning, kopt.clustering.strip_clustering...)."
            )
        # Structured pruning reads through TimeDistributed; widen's weight rules do not (yet).
        if isinstance(layer, keras.layers.TimeDistributed):
            raise ValueError(
                f"widen does not widen through wrapper layers; layer {layer.name!r} is a TimeDistributed. "
                "Build the model with the inner layer called on the sequence directly (a Dense reads the last "
                "axis of every step already)."
            )


def _widened_info(model, graph, layer_name):
    if not isinstance(layer_name, str) or layer_name not in graph.layers or graph.layers[layer_name].layer is None:
        candidates = [name for name, other in graph.layers.items() if other.class_name in WIDENABLE_LAYERS]
        raise ValueError(
            f"layer_name must name a layer of model {model.name!r} (not one inside a nested model); its "
            f"{'/'.join(WIDENABLE_LAYERS)} layers are {candidates}. Received: layer_name={layer_name!r}"
        )
    info = graph.layers[layer_name]
    config = info.layer.get_config()
    if not _widenable_class(info):
        raise ValueError(
            f"widen resizes {', '.join(WIDENABLE_LAYERS)} layers; layer {layer_name!r} is a "
            f"{type(info.layer).__name__}. Received: layer_name={layer_name!r}"
        )
    if info.kind not in _GROWING_KINDS:
        why = (
            _bidirectional_why(info.layer)
            if isinstance(info.layer, keras.layers.Bidirectional)
            else "it returns its state or is stateful"
            if config.get("return_state") or config.get("stateful")
            else "it uses data_format='channels_first'"
            if config.get("data_format") == "channels_first"
            else "it is a grouped convolution"
            if config.get("groups", 1) != 1
            else "it is called more than once (a shared layer)"
        )
        raise ValueError(f"Cannot widen layer {layer_name!r} ({info.class_name}): {why}. Received: layer_name={layer_name!r}")  # fmt: skip
    return info


def _bidirectional_why(layer):
    inner = layer.forward_layer
    if type(inner).__name__ not in ("LSTM", "GRU", "SimpleRNN") or type(inner).__module__.split(".")[0] != "keras":
        return f"it wraps a {type(inner).__name__}, and widen grows only Keras' LSTM, GRU and SimpleRNN"
    if layer.merge_mode not in ("concat", "sum", "ave", "mul"):
        return f"its merge_mode is {layer.merge_mode!r}; widen needs the directions merged into one output"
    if type(layer.backward_layer) is not type(inner) or layer.backward_layer.units != inner.units:
        return "its backward layer is not its forward layer's kind and width"
    return "it returns its state or is stateful, or is called more than once (a shared layer)"


def _widenable_class(info):
    """Whether the layer is one of Keras' own :data:`WIDENABLE_LAYERS` (a subclass may mean other weights)."""
    return info.class_name in WIDENABLE_LAYERS and type(info.layer).__module__.split(".")[0] == "keras"


def _require_widenable_group(graph, info, root):
    """The layers that widen together (``info`` first), after checking every one can; raises otherwise."""
    name = info.name
    group = next(group for group in graph.groups() if group.id == root)
    others = sorted(producer for producer in group.producers if producer != name)
    for other in others:
        producer = graph.layers[other]
        if not _widenable_class(producer) or producer.kind not in _GROWING_KINDS:
            merges = [
                merge.name for merge in graph.layers.values() if merge.kind == "merge" and _reads(graph, merge, root)
            ]
            raise ValueError(
                f"Cannot widen layer {name!r} ({info.class_name}): its output meets the output of layer {other!r} "
                f"({producer.class_name}) in {merges}, so the two must widen together, and widen resizes only "
                f"{', '.join(WIDENABLE_LAYERS)} layers called once. Received: layer_name={name!r}"
            )
    if group.frozen:
        raise ValueError(
            f"Cannot widen layer {name!r} ({info.class_name}): its channels must keep their number, because: "
            f"{'; '.join(group.frozen)}; more would change what the model computes or outputs. "
            f"Received: layer_name={name!r}"
        )
    for blocker, class_name, group_ids in graph.blockers:
        if root in {graph.find(group_id) for group_id in group_ids}:
            raise ValueError(
                f"Cannot widen layer {name!r} ({info.class_name}): layer {blocker!r} ({class_name}) reads its "
                f"channels, and widen cannot resize what a {class_name} reads (or a layer called twice, or a "
                f"nested model). Received: layer_name={name!r}"
            )
    return [info, *(graph.layers[other] for other in others)]


def _reads(graph, info, root):
    return any(bool(np.any(graph.roots_of(channel_map) == root)) for channel_map in info.input_maps)


def _resize_channelwise(layer, config, graph, root, units, new_units):
    """Raises a channel-wise layer's size argument (ConvNeXt's LayerScale), or the last entry of
    a Reshape that keeps the channels, to its wider input."""
    channel_map = graph.layers[layer.name].input_maps[0]
    wider = channel_map.size + int(np.sum(graph.roots_of(channel_map) == root)) * (new_units - units) // units
    if isinstance(layer, keras.layers.Reshape):
        config["target_shape"] = [*config["target_shape"][:-1], wider]
        return
    layer_config = {"module": type(layer).__module__, "class_name": type(layer).__name__}
    key = channelwise_size_argument(layer, layer_config)
    if isinstance(key, str) and key in config:
        config[key] = wider


def _set(graph, name, weights):
    layer = graph.layers[name].layer
    expected = [tuple(variable.shape) for variable in layer.weights]
    received = [tuple(np.shape(value)) for value in weights]
    if expected != received:
        raise ValueError(f"Widened layer {name!r} expects weights of shapes {expected}; computed {received}")
    layer.set_weights(weights)


def _noun(info):
    return "filters" if info.class_name.startswith("Conv") else "units"
