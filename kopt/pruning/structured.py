"""Structured (channel) pruning: removes whole filters, so the model really shrinks.

Unlike magnitude pruning, which zeroes weights inside dense tensors, this removes
the lowest-importance output filters of ``Conv1D/2D/3D``, ``SeparableConv1D/2D``
and the units of ``Dense``, ``LSTM``, ``GRU`` and ``SimpleRNN`` layers (a
recurrent unit leaves every gate and its own recurrent rows), and the matching
input channels of everything that reads them: the next Conv/Dense kernel, BatchNormalization statistics,
DepthwiseConv channels (whose own outputs then go too), pass-through layers
(activations, dropout, pooling, padding) and the rows a ``Flatten`` feeds into
the next Dense. The result is a new, smaller, dense model of standard Keras
layers that trains, saves and converts to TFLite like any other; the layers of
a nested backbone are pruned in the outer graph, and the result is flat.

Importance of filter ``j`` of a layer with kernel ``W`` (output channels last):

* ``"l1"`` (default; Li et al. 2017, "Pruning Filters for Efficient ConvNets"):
  ``sum |W[..., j]|``.
* ``"l2"``: ``sqrt(sum W[..., j] ** 2)``.
* ``"bn_gamma"`` (Liu et al. 2017, network slimming): ``|gamma_j|`` of the
  BatchNormalization that reads the channel; groups no BatchNormalization reads
  fall back to ``"l1"``.
* ``{layer name: scores}``: any per-channel scores computed elsewhere, e.g. the
  first-order Taylor importance of :func:`kopt.pruning.taylor_importance`.

A ``MultiHeadAttention`` loses whole heads (a group of ``num_heads`` channels scored
by their projection weights); a transformer's feed-forward width is a Dense group.
Layers whose outputs meet in an elementwise merge (``Add``, ``Multiply``...) form
one group with one channel set: each member's scores are divided by their mean,
then averaged, and the group is pruned once. Naming any member in ``layers`` or
``fraction`` prunes the whole group. Groups that reach a model output, a layer
that mixes channels (``Softmax``, ``LayerNormalization``, ``Reshape``) or a merge
whose inputs do not line up are never pruned; :func:`channel_plan` says why.

Example:

>>> import keras
>>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3, name="conv"),
...                           keras.layers.Flatten(), keras.layers.Dense(2, name="head")])
>>> smaller = prune_channels(model, 0.5)
>>> smaller.get_layer("conv").filters, tuple(smaller.get_layer("head").kernel.shape)
(4, (144, 2))
"""

import math
import numbers

import keras
import numpy as np

from kopt.pruning import flops as flops_lib
from kopt.pruning.structured_graph import analyze
from kopt.pruning.structured_graph import check_blockers
from kopt.pruning.structured_graph import without_nested_models
from kopt.pruning.structured_layers import fold_gates
from kopt.pruning.structured_layers import output_columns
from kopt.pruning.structured_layers import output_kernel
from kopt.pruning.structured_layers import unit_layers
from kopt.pruning.structured_surgery import head_scores
from kopt.pruning.structured_surgery import rebuild

IMPORTANCES = ("l1", "l2", "bn_gamma")


def channel_plan(
    model: keras.Model,
    fraction: float | dict[str, float] = 0.5,
    *,
    importance: str | dict = "l1",
    layers: list[str] | None = None,
    min_channels: int = 1,
    round_to: int = 1,
) -> dict:
    """Decides which output channels :func:`prune_channels` would remove (a dry run).

    A group of ``C`` channels pruned with fraction ``f`` keeps
    ``max(C - floor(f * C), min_channels)`` channels, rounded up to a multiple of
    ``round_to`` (at most ``C``): the ones with the highest importance.

    Args:
        model: A built functional or Sequential ``keras.Model`` of plain layers.
        fraction: Fraction in ``[0, 1)`` of output channels to remove from every
            prunable layer, or ``{layer name: fraction}`` to prune only those.
        importance: ``"l1"``, ``"l2"``, ``"bn_gamma"`` or ``{layer name:
            per-channel scores}`` (see the module docstring); with a dict, every
            layer of a pruned group needs scores.
        layers: Names of the Conv/Dense layers to prune (with a float
            ``fraction``); ``None`` prunes every layer that can be pruned.
        min_channels: Never keep fewer channels than this in a layer.
        round_to: Keep a multiple of this many channels (e.g. 8 for fast kernels).

    Returns:
        A JSON-ready dict: ``groups``, a list with ``layers``, ``channels``,
        ``kept``, ``removed`` (channel indices), ``fraction`` and ``frozen`` (why
        the group is never pruned, or None); and ``layers``, ``{name: {"group",
        "channels_before", "channels_after", "removed"}}`` for every Conv/Dense layer.

    Raises:
        ValueError: For a bad argument value, a layer name that is not in the model
            or cannot be pruned, coupled layers given different fractions, a
            subclassed model, kopt wrapper layers, or a layer that would receive
            pruned channels but cannot be sliced.
    """
    _check_arguments(fraction, importance, layers, min_channels, round_to)
    model = without_nested_models(model)
    graph = analyze(model)
    requested = _requested_fractions(model, graph, fraction, layers)
    plan_groups, plan_layers = [], {}
    for group in graph.groups():
        group_fraction = _group_fraction(group, requested)
        frozen = "; ".join(group.frozen) or None
        removed = []
        if group_fraction and frozen is None:
            scores = group_importance(graph, group, importance)
            keep = max(group.size - math.floor(group_fraction * group.size + 1e-9), min(min_channels, group.size))
            keep = min(group.size, math.ceil(keep / round_to) * round_to)
            removed = sorted(np.argsort(scores, kind="stable")[: group.size - keep].tolist())
        entry = {
            "layers": group.producers,
            "channels": group.size,
            "kept": group.size - len(removed),
            "removed": removed,
            "fraction": group_fraction,
            "frozen": frozen,
        }
        plan_groups.append(entry)
        for name in group.producers:
            plan_layers[name] = {
                "group": len(plan_groups) - 1,
                "channels_before": group.size,
                "channels_after": entry["kept"],
                "removed": removed,
            }
    check_blockers(graph, {g.id: p["removed"] for g, p in zip(graph.groups(), plan_groups, strict=True)})
    name = importance if isinstance(importance, str) else "custom"
    return {"model": model.name, "importance": name, "groups": plan_groups, "layers": plan_layers}


def apply_channel_plan(model: keras.Model, plan: dict) -> keras.Model:
    """Builds the smaller model a :func:`channel_plan` describes.

    The plan may be edited first (say, to choose channels by another criterion);
    layers of one group must keep the same ``removed`` list.

    Args:
        model: The model the plan was made for.
        plan: A dict as returned by :func:`channel_plan`; only ``plan["layers"]``
            is read.

    Returns:
        A new uncompiled model of the same kind (Sequential stays Sequential) with
        the same layer classes and configs except ``filters``/``units``, and the
        surviving weights copied.

    Raises:
        ValueError: If the plan does not fit the model.
    """
    model = without_nested_models(model)
    graph = analyze(model)
    layer_plans = plan.get("layers", {}) if isinstance(plan, dict) else None
    if layer_plans is None:
        raise ValueError(f"plan must be a dict from channel_plan(). Received: plan of type {type(plan).__name__}")
    _check_plan_layers(graph, layer_plans)
    removed_by_group, keep_masks = {}, {}
    for group in graph.groups():
        sets = {name: tuple(layer_plans.get(name, {}).get("removed", [])) for name in group.producers}
        distinct = set(sets.values())
        if len(distinct) > 1:
            raise ValueError(
                f"layers {sorted(sets)} share one channel set but the plan removes different channels: {sets}"
            )
        removed = set(distinct.pop()) if distinct else set()
        if removed and group.frozen:
            raise ValueError(
                f"layers {group.producers} cannot be pruned ({'; '.join(group.frozen)}). "
                f"Received: removed={sorted(removed)}"
            )
        if removed and (min(removed) < 0 or max(removed) >= group.size or len(removed) >= group.size):
            raise ValueError(
                f"layers {group.producers} have {group.size} channels; removed must name fewer than "
                f"{group.size} indices in [0, {group.size}). Received: removed={sorted(removed)}"
            )
        removed_by_group[group.id] = removed
        if removed:
            keep_masks[group.id] = np.isin(np.arange(group.size), sorted(removed), invert=True)
    check_blockers(graph, removed_by_group)
    return rebuild(model, graph, keep_masks)


def prune_channels(
    model: keras.Model,
    fraction: float | dict[str, float] = 0.5,
    *,
    importance: str | dict = "l1",
    layers: list[str] | None = None,
    min_channels: int = 1,
    round_to: int = 1,
) -> keras.Model:
    """Removes the lowest-importance channels; returns a new, smaller model.

    Same as ``apply_channel_plan(model, channel_plan(model, ...))``. Compile the
    result before training it.

    Args:
        model: A built functional or Sequential ``keras.Model`` of plain layers.
        fraction: Fraction in ``[0, 1)`` of channels to remove per layer, or
            ``{layer name: fraction}``.
        importance: ``"l1"``, ``"l2"``, ``"bn_gamma"`` or ``{layer name: scores}``.
        layers: Names of the layers to prune with a float ``fraction``.
        min_channels: Fewest channels a layer keeps.
        round_to: Kept channels are a multiple of this.

    Returns:
        A new uncompiled model of the same kind as ``model``.

    Raises:
        ValueError: As :func:`channel_plan`.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="hidden"),
    ...                           keras.layers.Dense(2, name="head")])
    >>> prune_channels(model, {"hidden": 0.25}).get_layer("hidden").units
    6
    """
    plan = channel_plan(
        model, fraction, importance=importance, layers=layers, min_channels=min_channels, round_to=round_to
    )
    return apply_channel_plan(model, plan)


def structured_pruning_report(original: keras.Model, pruned: keras.Model) -> dict:
    """Parameters and FLOPs (per example) of each layer before and after pruning.

    Args:
        original: The model before :func:`prune_channels`.
        pruned: The model it returned.

    Returns:
        A JSON-ready dict: ``layers``, ``{name: {"class", "params_before",
        "params_after", "flops_before", "flops_after"}}``, and ``total`` with the
        same keys summed plus ``params_ratio`` and ``flops_ratio`` (after / before).
    """
    original = without_nested_models(original)  # prune_channels returns a flat model: compared layer by layer
    flops_before, flops_after = flops_lib.layer_flops(original), flops_lib.layer_flops(pruned)
    layers = {}
    for layer in original.layers:
        after = pruned.get_layer(layer.name)
        layers[layer.name] = {
            "class": type(layer).__name__,
            "params_before": int(layer.count_params()),
            "params_after": int(after.count_params()),
            "flops_before": _flops_of(flops_before, layer.name),
            "flops_after": _flops_of(flops_after, layer.name),
        }
    keys = ("params_before", "params_after", "flops_before", "flops_after")
    total = {key: sum(entry[key] for entry in layers.values()) for key in keys}
    total["params_ratio"] = total["params_after"] / total["params_before"] if total["params_before"] else 1.0
    total["flops_ratio"] = total["flops_after"] / total["flops_before"] if total["flops_before"] else 1.0
    return {"layers": layers, "total": total}


def _flops_of(flops, name):
    # A nested model's layers are listed as "outer/inner".
    return int(flops.get(name, 0) + sum(v for k, v in flops.items() if k.startswith(f"{name}/")))


def _check_plan_layers(graph, layer_plans):
    sizes = {name: group.size for group in graph.groups() for name in group.producers}
    for name, entry in layer_plans.items():
        if name not in sizes:
            raise ValueError(
                f"the plan names layer {name!r}, which is not a prunable layer of model "
                f"{graph.model.name!r}; was the plan made for another model?"
            )
        before = entry.get("channels_before", sizes[name]) if isinstance(entry, dict) else None
        if before != sizes[name]:
            raise ValueError(
                f"the plan says layer {name!r} has {before} channels but it has {sizes[name]}; "
                "was the plan made for another model?"
            )


def _check_arguments(fraction, importance, layers, min_channels, round_to):
    values = fraction.items() if isinstance(fraction, dict) else [(None, fraction)]
    for name, value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
            where = f"fraction[{name!r}]" if name is not None else "fraction"
            raise ValueError(f"{where} must be a number in [0, 1). Received: {where}={value!r}")
    if isinstance(importance, dict):
        for name, scores in importance.items():
            array = np.asarray(scores)
            if not isinstance(name, str) or array.ndim != 1 or not np.issubdtype(array.dtype, np.number):
                raise ValueError(
                    "importance as a dict maps layer names to 1-D per-channel scores. "
                    f"Received: importance[{name!r}] of shape {array.shape}"
                )
    elif importance not in IMPORTANCES:
        raise ValueError(f"importance must be one of {IMPORTANCES}. Received: importance={importance!r}")
    if layers is not None and (isinstance(layers, str) or not all(isinstance(n, str) for n in layers)):
        raise ValueError(f"layers must be a list of layer names or None. Received: layers={layers!r}")
    if layers is not None and isinstance(fraction, dict):
        raise ValueError("give the layers to prune either as fraction={name: value} or as layers=[...], not both")
    for name, value in (("min_channels", min_channels), ("round_to", round_to)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value!r}")


def _requested_fractions(model, graph, fraction, layers):
    """``{producer name: fraction}``, after checking every named layer can be pruned."""
    if isinstance(fraction, dict):
        names, requested = list(fraction), {n: float(v) for n, v in fraction.items()}
    elif layers is not None:
        names, requested = list(layers), {n: float(fraction) for n in layers}
    else:
        reason = graph.nothing_prunable() if float(fraction) > 0 else None
        if reason is not None:
            raise ValueError(f"{reason}. Received: fraction={fraction!r}")
        return {name: float(fraction) for group in graph.groups() for name in group.producers}
    known = {layer.name for layer in model.layers}
    groups = {name: group for group in graph.groups() for name in group.producers}
    for name in names:
        if name not in known:
            raise ValueError(f"layer {name!r} is not in model {model.name!r}; its layers are {sorted(known)}")
        if name not in groups:
            kind = type(model.get_layer(name)).__name__
            raise ValueError(
                f"layer {name!r} is a {kind}; only the output channels of Dense, Conv1D/2D/3D and "
                f"SeparableConv1D/2D layers (groups=1, channels_last), the units of an LSTM, GRU or SimpleRNN "
                "and the heads of a MultiHeadAttention can be pruned"
            )
        if groups[name].frozen and requested[name] > 0:
            raise ValueError(f"layer {name!r} cannot be pruned: {'; '.join(groups[name].frozen)}")
    return requested


def _group_fraction(group, requested):
    values = {name: requested[name] for name in group.producers if name in requested}
    if len(set(values.values())) > 1:
        raise ValueError(
            f"layers {group.producers} share one channel set (they meet in an elementwise merge) "
            f"and must be pruned by one fraction. Received: {values}"
        )
    return next(iter(values.values()), 0.0)


def group_importance(graph, group, importance):
    """Per-channel scores of ``group`` (each member's divided by its mean, then averaged)."""
    if isinstance(importance, dict):
        return _given_scores(group, importance)
    scores = []
    if importance == "bn_gamma":
        scores = _bn_gamma_scores(graph, group)
    if not scores:
        for name in group.producers:
            layer = graph.layers[name].layer
            if graph.layers[name].kind == "attention":
                scores.append(head_scores(layer, importance))
                continue
            folded = 0.0
            for unit_layer in unit_layers(layer):  # a Bidirectional's unit is a column in both directions
                kernel = output_columns(unit_layer, np.asarray(output_kernel(unit_layer).numpy()))
                columns = np.abs(kernel.reshape(-1, kernel.shape[-1]))
                folded = folded + fold_gates(columns**2 if importance == "l2" else columns, unit_layer).sum(0)
            scores.append(np.sqrt(folded) if importance == "l2" else folded)
    normalized = [s / s.mean() if s.mean() > 0 else s for s in scores]
    return np.mean(normalized, axis=0)


def _given_scores(group, importance):
    scores = []
    for name in group.producers:
        if name not in importance:
            raise ValueError(
                f"importance has no scores for layer {name!r}, which is pruned; "
                f"Received: importance keys {sorted(importance)}"
            )
        values = np.asarray(importance[name], dtype=np.float64)
        if values.shape != (group.size,):
            raise ValueError(
                f"layer {name!r} has {group.size} channels. Received: importance[{name!r}] of shape {values.shape}"
            )
        scores.append(values)
    normalized = [s / s.mean() if s.mean() > 0 else s for s in scores]
    return np.mean(normalized, axis=0)


def _bn_gamma_scores(graph, group):
    scores = []
    for info in graph.layers.values():
        norm = unit_layers(info.layer)[0] if info.kind == "normalization" else None  # a TimeDistributed's inner
        if norm is None or not norm.get_config().get("scale", True):
            continue
        channel_map = info.input_maps[0]
        where = graph.roots_of(channel_map) == group.id
        if where.any():
            scores.append(np.bincount(channel_map.index[where], np.abs(norm.gamma.numpy()[where]), group.size))
    return scores
