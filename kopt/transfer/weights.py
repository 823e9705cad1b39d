"""Parameter transfer: start a model from another model's trained weights.

:func:`transfer_weights` pairs the layers of two models and copies every weight
it can, leaving the target's own (initial) values where it cannot. The models
may differ in architecture: a layer missing on one side, a wider layer, an extra
block. Nothing else about the target changes (its config, its optimizer).

Matching:

* ``match="name"`` (default): a target layer takes the weights of the source
  layer of the same name. Layers inside nested models count by their own
  names, so those must be unique within each model.
* ``match="order"``: the ``i``-th layer holding weights in the target takes the
  ``i``-th such layer of the source (in ``model.layers`` order, nested models
  entered). For models whose layers kept Keras' automatic names (``dense_7``),
  which differ between two models built in one process.

Within a matched pair (the same layer class), weights pair by their names in the
layer (``kernel``, ``gamma``, ``query/kernel``). A weight of the same shape is
copied; of the same rank but other sizes, the overlap is copied (each axis from
index 0, but a convolution kernel's spatial axes centred, see
:mod:`kopt.transfer.overlap`), so a wider layer gets the source's channels
first; anything else is skipped with its reason. A recurrent layer's gates are
overlapped gate by gate, and a kernel's input rows follow the channels that feed
them through ``Flatten``, ``Concatenate`` and ``Bidirectional``
(:mod:`kopt.transfer.alignment`); where the channel graph cannot read a model,
rows go by index and the report's reason says so. Nothing is assigned until the
whole plan is made, so ``strict=True`` fails before a weight changes.

Example:

>>> import keras
>>> source = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="hidden"),
...                            keras.layers.Dense(2, name="head")])
>>> target = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, name="hidden"),
...                            keras.layers.Dense(3, name="head2")])
>>> report = transfer_weights(source, target)
>>> [entry.name for entry in report.copied], [entry.name for entry in report.partial]
(['hidden/bias'], ['hidden/kernel'])
>>> report.partial[0].reason
'target[0:4, 0:8] from the source'
>>> report.skipped_layers()
{'head2': "no layer named 'head2' in the source"}
"""

import dataclasses

import keras
import numpy as np

from kopt.transfer.alignment import InputRows
from kopt.transfer.alignment import gate_counts
from kopt.transfer.overlap import copy_aligned
from kopt.transfer.report import COPIED
from kopt.transfer.report import PARTIAL
from kopt.transfer.report import SKIPPED
from kopt.transfer.report import TransferReport
from kopt.transfer.report import WeightTransfer

__all__ = ["MATCHES", "transfer_weights"]

MATCHES = ("name", "order")
# Weights of a convolution whose leading axes are its window.
_WINDOW_WEIGHTS = ("kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel")


def transfer_weights(
    source: keras.Model, target: keras.Model, *, match: str = "name", partial: bool = True, strict: bool = False
) -> TransferReport:
    """Copies every weight of ``source`` that fits into ``target``, in place.

    Args:
        source: A built ``keras.Model`` (any kind: Sequential, functional,
            subclassed) holding the trained weights.
        target: A built ``keras.Model`` that receives them.
        match: ``"name"`` or ``"order"`` (see the module docstring).
        partial: Whether weights of the same rank but other sizes get their
            overlap copied; ``False`` skips them.
        strict: Raise instead of transferring anything unless every weight of
            ``target`` is copied whole.

    Returns:
        A :class:`kopt.transfer.TransferReport` of every target weight.

    Raises:
        ValueError: For a model that is not a built ``keras.Model``, an unknown
            ``match``, layer names repeated within a model under
            ``match="name"``, or, with ``strict=True``, the first weight not
            copied whole (naming its layer, weight and both shapes); always
            before any weight is assigned.
    """
    _require_model("source", source)
    _require_model("target", target)
    if match not in MATCHES:
        raise ValueError(f"match must be one of {MATCHES}. Received: match={match!r}")
    source_layers, target_layers = _weighted_layers(source), _weighted_layers(target)
    pairs = _pair(source_layers, target_layers, match)
    renames = {other.name: layer.name for layer, other, _ in pairs if other is not None}
    rows = InputRows(source, target, renames)
    plan, entries = [], []
    for target_layer, source_layer, unpaired_reason in pairs:
        for variable, value, entry in _plan_layer(
            target_layer, source_layer, unpaired_reason, partial=partial, rows=rows
        ):
            entries.append(entry)
            if value is not None:
                plan.append((variable, value))
    if strict:
        _require_all_copied(entries)
    for variable, value in plan:
        variable.assign(value)
    used = {id(source_layer) for _, source_layer, _ in pairs if source_layer is not None}
    return TransferReport(
        copied=tuple(entry for entry in entries if entry.status == COPIED),
        partial=tuple(entry for entry in entries if entry.status == PARTIAL),
        skipped=tuple(entry for entry in entries if entry.status == SKIPPED),
        unused_source_layers=tuple(layer.name for layer in source_layers if id(layer) not in used),
        match=match,
    )


def _require_model(argument, model):
    if not isinstance(model, keras.Model):
        raise ValueError(f"{argument} must be a keras.Model. Received: {argument} of type {type(model).__name__}")
    if not model.built:
        raise ValueError(
            f"{argument} model {model.name!r} is not built, so it has no weights yet; give it a keras.Input "
            f"or call it on data first. Received: {argument}={model.name!r}"
        )


def _weighted_layers(model):
    """The layers holding weights, in ``model.layers`` order, nested models entered."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _weighted_layers(layer)
        elif layer.weights:
            found.append(layer)
    return found


def _pair(source_layers, target_layers, match):
    """``[(target layer, source layer or None, reason when None), ...]``."""
    if match == "order":
        pairs = [(layer, other, "") for layer, other in zip(target_layers, source_layers)]
        extra = target_layers[len(source_layers) :]
        return pairs + [
            (layer, None, f"the source has only {len(source_layers)} layers with weights") for layer in extra
        ]
    by_name = _by_name(source_layers, "source")
    _by_name(target_layers, "target")
    return [(layer, by_name.get(layer.name), f"no layer named {layer.name!r} in the source") for layer in target_layers]


def _by_name(layers, argument):
    found = {}
    for layer in layers:
        if layer.name in found:
            raise ValueError(
                f"Layer name {layer.name!r} occurs twice in the {argument} model (nested models included), so "
                f"layers cannot be matched by name; rename one or pass match='order'. Received: match='name'"
            )
        found[layer.name] = layer
    return found


def _weight_names(layer):
    """``{name within the layer: variable}``: the path below the layer's own (``query/kernel``).

    A wrapped layer's own name is replaced by its role (``forward/lstm_cell/kernel``,
    ``layer/kernel``): Keras names it after its class (``forward_lstm``, ``dense``) with a
    counter when a process builds two (``forward_lstm_1``), which two models would not share.
    """
    names = {}
    prefix = f"{layer.path}/" if getattr(layer, "path", None) else None
    roles = _sublayer_roles(layer)
    for variable in layer.weights:
        path = variable.path
        name = path[len(prefix) :] if prefix and path.startswith(prefix) else variable.name
        for own, role in roles.items():
            if name.startswith(own):
                name = role + name[len(own) :]
                break
        unique, count = name, 1
        while unique in names:
            unique, count = f"{name}#{count}", count + 1
        names[unique] = variable
    return names


def _sublayer_roles(layer):
    """``{"<sublayer name>/": "<role>/"}`` for the layers a Bidirectional or another wrapper holds."""
    if isinstance(layer, keras.layers.Bidirectional):
        return {f"{layer.forward_layer.name}/": "forward/", f"{layer.backward_layer.name}/": "backward/"}
    if isinstance(layer, keras.layers.Wrapper):
        return {f"{layer.layer.name}/": "layer/"}
    return {}


def _plan_layer(target_layer, source_layer, unpaired_reason, *, partial, rows):
    """``(variable, value or None, entry)`` for each weight of ``target_layer``."""
    targets = _weight_names(target_layer)
    if source_layer is None:
        for name, variable in targets.items():
            yield variable, None, _entry(target_layer, name, variable, None, None, SKIPPED, unpaired_reason)
        return
    source_class, target_class = type(source_layer).__name__, type(target_layer).__name__
    sources = _weight_names(source_layer)
    window = "kernel_size" in target_layer.get_config()
    gates, source_gates = gate_counts(target_layer), gate_counts(source_layer)
    noun = "groups" if target_layer.get_config().get("groups", 1) != 1 else "gates"
    for name, variable in targets.items():
        other = sources.get(name)
        if source_class != target_class:
            reason = f"source layer {source_layer.name!r} is a {source_class}, not a {target_class}"
            yield variable, None, _entry(target_layer, name, variable, source_layer, other, SKIPPED, reason)
        elif other is None:
            reason = f"source layer {source_layer.name!r} has no weight {name!r}"
            yield variable, None, _entry(target_layer, name, variable, source_layer, None, SKIPPED, reason)
        else:
            blocks = (gates.get(id(variable), 1), source_gates.get(id(other), 1))
            if blocks[0] != blocks[1] and tuple(variable.shape) != tuple(other.shape):
                reason = f"its last axis holds {blocks[0]} {noun} in the target, {blocks[1]} in the source"
                yield variable, None, _entry(target_layer, name, variable, source_layer, other, SKIPPED, reason)
                continue
            layout = {"gates": blocks[0], "noun": noun, "window": window, "rows": rows}
            yield _plan_weight(target_layer, name, variable, source_layer, other, partial=partial, **layout)


def _plan_weight(target_layer, name, variable, source_layer, other, *, partial, gates, noun, window, rows):
    target_shape, source_shape = tuple(variable.shape), tuple(other.shape)
    if len(target_shape) != len(source_shape):
        reason = f"ranks differ: source {source_shape}, target {target_shape}"
        return variable, None, _entry(target_layer, name, variable, source_layer, other, SKIPPED, reason)
    matched = rows.positions(source_layer, target_layer, name, source_shape, target_shape)
    if isinstance(matched, str):
        reason = f"its rows cannot be matched: {matched}"
        return variable, None, _entry(target_layer, name, variable, source_layer, other, SKIPPED, reason)
    in_order = matched is None or np.array_equal(matched[1], np.arange(len(matched[1])))
    if target_shape == source_shape and (in_order or np.all(matched[1] >= 0)):
        value = np.asarray(other.numpy())
        reason = ""
        if not in_order:  # the same channels in another order (a concatenation of other widths)
            value, reason = np.take(value, matched[1], axis=matched[0]), "rows matched by channel"
        return (
            variable,
            value.astype(variable.dtype),
            _entry(target_layer, name, variable, source_layer, other, COPIED, reason),
        )
    if not partial:
        differ = "shapes differ" if target_shape != source_shape else "input channels differ"
        reason = f"{differ}: source {source_shape}, target {target_shape} (partial=False)"
        return variable, None, _entry(target_layer, name, variable, source_layer, other, SKIPPED, reason)
    centred = tuple(range(len(target_shape) - 2)) if window and name.split("/")[-1] in _WINDOW_WEIGHTS else ()
    value, values, where = copy_aligned(
        np.asarray(other.numpy()),
        np.asarray(variable.numpy()),
        centred_axes=centred,
        gates=gates,
        noun=noun,
        rows=matched,
    )
    reason = f"{where} from the source"
    unread = [why for why in (rows.source_why, rows.target_why) if why]
    if matched is None and unread:
        reason += f"; rows by index, as the channel graph cannot read a model: {unread[0]}"
    entry = _entry(target_layer, name, variable, source_layer, other, PARTIAL, reason)
    return variable, value.astype(variable.dtype), _with_values(entry, values)


def _entry(target_layer, name, variable, source_layer, other, status, reason):
    return WeightTransfer(
        layer=target_layer.name,
        weight=name,
        target_shape=tuple(int(dim) for dim in variable.shape),
        status=status,
        source_layer=None if source_layer is None else source_layer.name,
        source_shape=None if other is None else tuple(int(dim) for dim in other.shape),
        reason=reason,
    )


def _with_values(entry, values):
    return dataclasses.replace(entry, values=values)


def _require_all_copied(entries):
    missed = [entry for entry in entries if entry.status != COPIED]
    if not missed:
        return
    first = missed[0]
    source = "no source weight" if first.source_shape is None else f"source shape {first.source_shape}"
    more = f" (and {len(missed) - 1} more weight(s) not copied whole)" if len(missed) > 1 else ""
    raise ValueError(
        f"strict transfer: weight {first.weight!r} of layer {first.layer!r} (shape {first.target_shape}) would be "
        f"{'partly copied' if first.status == PARTIAL else 'left as it is'}: {source}; {first.reason}{more}. "
        "Nothing was transferred. Received: strict=True"
    )
