"""Latency-aware channel plans: remove channels where the milliseconds are, not only the parameters.

A uniform fraction (``prune_channels(model, 0.5)``) takes as many channels from a
wide layer deep in the network, which costs little per channel, as from a layer
on a large feature map, which costs much. ``latency_channel_plan`` reaches a
speedup while removing as little importance as it can:

1. Every convolution and dense layer is timed alone in LiteRT
   (:func:`tflite_export.layer_latencies`), or its milliseconds are given.
2. A layer's time is modelled as proportional to the fraction of its input
   channels kept times the fraction of its output channels kept (a depthwise
   convolution: of its channels kept). This is how its multiply-accumulates
   scale; the measured milliseconds weight each layer by what it really costs.
   A recurrent layer (``LSTM``, ``GRU``, ``SimpleRNN``) multiplies its state by
   its recurrent kernel at every step as well: that share of its time, ``units /
   (inputs + units)``, goes with the square of the units kept. Its loop's
   per-step work costs the same at any width, so that part of its time
   (:func:`tflite_export.fixed_latencies`, measured at half its units) stays.
3. Starting from the whole model, channels are removed ``round_to`` at a time from
   the group whose next channels cost the least importance per millisecond
   saved, until the modelled time is
   ``1 / speedup`` of the model's. It is the greedy rule of a knapsack of
   importance under a latency budget, as in HALP (Shen et al. 2022,
   "Structural Pruning via Latency-Saliency Knapsack"), with the cost of a group
   recomputed after every step because a layer's time depends on both its
   input and its output groups. A channel's importance (as in
   :func:`channel_plan`) counts as its share of its group's total, once for
   every layer that produces the group, so that groups compare: the plan
   minimizes the summed share of importance each layer loses. Half of a
   16-channel bottleneck costs as much as half of a 96-channel expansion, and a
   residual stream written by three layers three times as much.

The result is a :func:`channel_plan` dict (apply it with
:func:`apply_channel_plan`) with a ``latency`` entry: the modelled milliseconds
before and after, the speedup asked for and each layer's measured time. The
modelled speedup is an estimate; measure the converted file.

Example:

>>> import keras
>>> inputs = keras.Input((16, 16, 3))
>>> x = keras.layers.Conv2D(16, 3, padding="same", name="wide_map")(inputs)
>>> x = keras.layers.Conv2D(16, 3, strides=4, padding="same", name="small_map")(x)
>>> outputs = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(x))
>>> model = keras.Model(inputs, outputs)
>>> times = {"wide_map": 1.0, "small_map": 0.1, "head": 0.01}
>>> plan = latency_channel_plan(model, 1.8, latencies=times)
>>> plan["layers"]["wide_map"]["channels_after"], plan["layers"]["small_map"]["channels_after"]
(8, 16)
"""

import math
import numbers
from collections.abc import Callable

import keras
import numpy as np

from kopt.pruning.structured import channel_plan
from kopt.pruning.structured import group_importance
from kopt.pruning.structured_graph import analyze
from kopt.pruning.structured_graph import without_nested_models

__all__ = ["latency_channel_plan"]


def latency_channel_plan(
    model: keras.Model,
    speedup: float,
    *,
    latencies: dict[str, float] | None = None,
    fixed_latencies: dict[str, float] | None = None,
    importance: str | dict = "l1",
    round_to: int = 8,
    max_fraction: float = 0.75,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Plans which channels to remove for a modelled ``speedup`` at the least importance.

    Args:
        model: A built functional or Sequential ``keras.Model`` of plain layers.
        speedup: Modelled time of the model over that of the pruned one, above 1
            (2.0: half the milliseconds).
        latencies: ``{layer name: milliseconds}`` of the model's convolution and
            dense layers; ``None`` times each alone in LiteRT
            (:func:`tflite_export.layer_latencies`, about a second per distinct layer).
            Layers missing from it cost nothing.
        fixed_latencies: ``{layer name: milliseconds}`` of a layer's time that
            does not shrink with its channels (at most its ``latencies`` entry);
            ``None`` measures it for recurrent layers when ``latencies`` is
            measured (:func:`tflite_export.fixed_latencies`), and is none
            otherwise.
        importance: As :func:`channel_plan`: ``"l1"``, ``"l2"``, ``"bn_gamma"`` or
            ``{layer name: per-channel scores}``.
        round_to: Channels go ``round_to`` at a time, so every pruned group keeps
            a multiple of it (8 suits XNNPACK's kernels); a group that is not a
            multiple first loses its remainder.
        max_fraction: The most of any group's channels that may go, in ``(0, 1)``.
        log: Optional ``callable(str)`` told of the measurement and the result.

    Returns:
        :func:`channel_plan`'s dict plus ``latency``: ``{"speedup_requested",
        "modelled_ms_before", "modelled_ms_after", "modelled_speedup",
        "layer_ms"}``.

    Raises:
        ValueError: For a bad argument (naming it and its value), a model
            :func:`channel_plan` refuses, or a speedup the model cannot reach within
            ``max_fraction`` (naming the best modelled speedup).
    """
    _check(speedup, round_to, max_fraction, latencies, fixed_latencies)
    model = without_nested_models(model)  # a backbone's layers are timed and planned in the outer graph
    graph = analyze(model)
    if latencies is None:
        import tflite_export

        latencies = tflite_export.layer_latencies(model, log=log)
        if fixed_latencies is None:
            fixed_latencies = tflite_export.fixed_latencies(model, latencies=latencies, log=log)
    fixed_latencies = fixed_latencies or {}
    cost = _CostModel(graph, latencies, fixed_latencies)
    groups = [group for group in graph.groups() if not group.frozen]
    order, scores, keep, floor_of = {}, {}, {}, {}
    for group in groups:
        values = np.asarray(group_importance(graph, group, importance), np.float64)
        order[group.id] = np.argsort(values, kind="stable")
        # A share of the group's importance, once per layer that produces it: 8 channels of a
        # 16-channel bottleneck cost far more than 8 of 96, and a residual stream that three
        # layers write costs three layers' share.
        share = values / values.sum() if values.sum() > 0 else np.full(group.size, 1.0 / group.size)
        scores[group.id] = share * len(group.producers)
        keep[group.id] = group.size
        floor_of[group.id] = max(1, group.size - math.floor(max_fraction * group.size))
    before = cost.total(keep)
    target = before / speedup
    now = before
    while now > target:
        best = None
        for group in groups:
            size, kept = group.size, keep[group.id]
            step = kept % round_to or round_to
            if kept - step < floor_of[group.id]:
                continue
            saved = now - cost.total({**keep, group.id: kept - step})
            if saved <= 0:
                continue
            lost = scores[group.id][order[group.id][size - kept : size - kept + step]].sum()
            if best is None or lost / saved < best[0]:
                best = (lost / saved, group.id, kept - step)
        if best is None:
            raise ValueError(
                f"model {model.name!r} cannot reach speedup={speedup!r} with at most max_fraction={max_fraction!r} "
                f"of each group's channels removed: the modelled speedup stops at {before / now:.3f}x. "
                "Raise max_fraction or ask for less."
            )
        keep[best[1]] = best[2]
        now = cost.total(keep)
    fractions = {
        group.producers[0]: (group.size - keep[group.id]) / group.size
        for group in groups
        if keep[group.id] < group.size
    }
    plan = channel_plan(model, fractions, importance=importance) if fractions else channel_plan(model, 0.0)
    plan["latency"] = {
        "speedup_requested": float(speedup),
        "modelled_ms_before": float(before),
        "modelled_ms_after": float(now),
        "modelled_speedup": float(before / now),
        "layer_ms": {name: float(value) for name, value in latencies.items()},
        "layer_fixed_ms": {name: float(value) for name, value in fixed_latencies.items()},
    }
    if log is not None:
        log(f"latency plan: modelled {before:.4f} ms -> {now:.4f} ms ({before / now:.2f}x)")
    return plan


class _CostModel:
    """Modelled milliseconds of a model as a function of the channels each group keeps."""

    def __init__(self, graph, latencies, fixed):
        sizes = {group.id: group.size for group in graph.groups()}
        # (ms that scale, {input root: entries}, fixed input entries, all input entries, output root
        #  or None, share of the scaling ms that is state times recurrent kernel); ms that do not
        #  scale add up in self.fixed.
        self.terms, self.fixed = [], 0.0
        for name, milliseconds in latencies.items():
            info = graph.layers.get(name)
            if info is None or not info.input_maps:
                continue
            roots = graph.roots_of(info.input_maps[0])
            counts = {int(root): int((roots == root).sum()) for root in set(roots.tolist()) if root >= 0}
            output = graph.find(info.output_group) if info.output_group >= 0 else None
            recurrent = 0.0
            if info.kind in ("recurrent", "bidirectional") and output is not None:
                recurrent = sizes[output] / (len(roots) + sizes[output])
            self.fixed += float(fixed.get(name, 0.0))
            scaling = float(milliseconds) - float(fixed.get(name, 0.0))
            self.terms.append((scaling, counts, int((roots < 0).sum()), len(roots), output, recurrent))
        self.sizes = sizes

    def total(self, keep):
        total = self.fixed
        for milliseconds, counts, unprunable, entries, output, recurrent in self.terms:
            kept_inputs = unprunable + sum(
                n * keep.get(root, self.sizes[root]) / self.sizes[root] for root, n in counts.items()
            )
            fraction = kept_inputs / entries if entries else 1.0
            if output is not None:
                kept_outputs = keep.get(output, self.sizes[output]) / self.sizes[output]
                fraction = (1.0 - recurrent) * fraction * kept_outputs + recurrent * kept_outputs**2
            total += milliseconds * fraction
        return total


def _check(speedup, round_to, max_fraction, latencies, fixed_latencies):
    if isinstance(speedup, bool) or not isinstance(speedup, numbers.Real) or not speedup > 1.0:
        raise ValueError(f"speedup must be a number above 1 (2.0 halves the time). Received: speedup={speedup!r}")
    if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:
        raise ValueError(f"round_to must be an integer >= 1. Received: round_to={round_to!r}")
    if isinstance(max_fraction, bool) or not isinstance(max_fraction, numbers.Real) or not 0 < max_fraction < 1:
        raise ValueError(f"max_fraction must be in (0, 1). Received: max_fraction={max_fraction!r}")
    if latencies is None:
        if fixed_latencies is not None:
            raise ValueError(
                "fixed_latencies splits the latencies given: pass latencies too, or neither to measure both. "
                f"Received: fixed_latencies={fixed_latencies!r}, latencies=None"
            )
        return
    bad = (
        {name: value for name, value in latencies.items() if not _is_milliseconds(value)}
        if isinstance(latencies, dict)
        else latencies
    )
    if bad or not isinstance(latencies, dict):
        raise ValueError(f"latencies must map layer names to milliseconds >= 0. Received: latencies={bad!r}")
    if fixed_latencies is None:
        return
    bad = (
        {
            name: value
            for name, value in fixed_latencies.items()
            if not _is_milliseconds(value) or name not in latencies or value > latencies[name]
        }
        if isinstance(fixed_latencies, dict)
        else fixed_latencies
    )
    if bad or not isinstance(fixed_latencies, dict):
        raise ValueError(
            "fixed_latencies must map layers of latencies to milliseconds between 0 and their latencies entry. "
            f"Received: fixed_latencies={bad!r}"
        )


def _is_milliseconds(value):
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and value >= 0
