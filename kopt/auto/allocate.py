"""Allocation: per-layer sparsities that reach a global target at the least predicted loss.

From a :class:`kopt.auto.SensitivityTable`, each layer's predicted accuracy loss
``d_l(s)`` at sparsity ``s`` is read off its curve. The allocation minimizes
``sum_l d_l(s_l)`` subject to ``sum_l n_l s_l >= target * sum_l n_l`` (``n_l``
the layer's prunable weights), greedily: sparsity is raised in small steps, each
time on the layer whose next step costs the least predicted loss per weight
removed. Where steps cost nothing (flat curves) the least pruned layer goes
first, so insensitive layers share the work instead of one being emptied. The
last step is cut so the target is met exactly.

A layer is *fragile* beyond its safe level: the highest sparsity (read off its
curve, up to the last level measured) at which pruning it alone, without
retraining, costs at most ``fragile_drop`` points. Fine-tuning recovers much of a
no-retraining loss, so the default limit is wide: half the model's accuracy above
chance (:meth:`SensitivityTable.default_fragile_drop`); a layer past it has lost
most of what it computes (a first convolution with few filters, say). It is never
pruned further; :attr:`Allocation.held_back` says which layers were held below
the target and why. With ``target_gzip_kb`` the target sparsity is the smallest
whose allocation's predicted int8 gzip size (:class:`kopt.auto.SizeModel`) fits.

Example:

>>> from kopt.auto.sensitivity import SensitivityTable
>>> table = SensitivityTable(
...     baseline_accuracy=98.0, layers=["conv", "dense"], sizes={"conv": 100, "dense": 900},
...     sparsities=[0.5, 0.9], accuracy={"conv": [90.0, 50.0], "dense": [98.0, 97.5]},
...     bits=[8], quantized_accuracy={"conv": [98.0], "dense": [98.0]})
>>> allocation = allocate(table, target_sparsity=0.8, fragile_drop=25.0)
>>> {name: round(value, 3) for name, value in allocation.sparsities.items()}
{'conv': 0.0, 'dense': 0.889}
>>> allocation.held_back[0]["layer"]
'conv'
"""

import dataclasses
import heapq
import numbers
from typing import TYPE_CHECKING

import numpy as np
from absl import logging

from kopt.auto.sensitivity import SensitivityTable
from kopt.auto.size import SizeModel
from kopt.pruning import schedules as schedules_lib

if TYPE_CHECKING:
    import keras

__all__ = ["Allocation", "allocate", "uniform_allocation"]

_STEP = 0.01
# Tie-break weight: among equally cheap steps, prefer the least pruned layer.
_SPREAD = 1e-9


@dataclasses.dataclass
class Allocation:
    """Per-layer sparsities and what they are predicted to cost.

    Attributes:
        sparsities: ``{layer name: sparsity}`` for every prunable layer.
        target_sparsity: The overall sparsity asked for (or found for a size).
        overall_sparsity: ``sum n_l s_l / sum n_l`` of the allocation.
        predicted_drop: Sum of the layers' predicted losses, points.
        held_back: ``[{"layer", "safe_sparsity", "reason"}]``: fragile layers kept
            below the target sparsity.
        predicted_gzip_bytes: With a size target, the predicted int8 gzip size.
        capped: ``None`` when the target was met; otherwise why it was not: the
            target needs fragile layers pruned past their safe level, so the
            allocation is the most that can be reached without that
            (``overall_sparsity`` says how much), and ``held_back`` names the
            layers that capped it.
    """

    sparsities: dict
    target_sparsity: float
    overall_sparsity: float
    predicted_drop: float
    held_back: list
    predicted_gzip_bytes: int | None = None
    capped: str | None = None

    def schedules(self, *, end_step: int, frequency: int = 1, initial: dict | None = None) -> dict:
        """Per-layer pruning schedules for ``prune_low_magnitude(layer_schedules=...)``.

        Each layer goes from its ``initial`` sparsity (default 0) to its allocated
        one by ``PolynomialDecay`` between step 0 and ``end_step``; a layer already
        there keeps it with ``ConstantSparsity``, and a layer allocated 0 is not
        wrapped (``None``).

        Args:
            end_step: Step at which every layer reaches its sparsity.
            frequency: Steps between mask updates.
            initial: ``{layer name: sparsity}`` the layers start from.
        """
        initial = initial or {}
        result = {}
        for name, target in self.sparsities.items():
            start = min(float(initial.get(name, 0.0)), target)
            if target <= 0:
                result[name] = None
            elif target - start < 1e-6:
                result[name] = schedules_lib.ConstantSparsity(target, begin_step=0, frequency=frequency)
            else:
                result[name] = schedules_lib.PolynomialDecay(
                    initial_sparsity=start, final_sparsity=target, begin_step=0, end_step=end_step, frequency=frequency
                )
        return result

    def to_dict(self) -> dict:
        """The allocation as JSON-ready plain data."""
        return dataclasses.asdict(self)


def allocate(
    table: SensitivityTable,
    *,
    target_sparsity: float | None = None,
    target_gzip_kb: float | None = None,
    model: "keras.Model | None" = None,
    calibration: np.ndarray | None = None,
    fragile_drop: float | None = None,
) -> Allocation:
    """Chooses per-layer sparsities reaching a global target with the least predicted loss.

    Args:
        table: The model's :class:`SensitivityTable`.
        target_sparsity: Overall sparsity over the prunable weights, in ``(0, 1)``.
        target_gzip_kb: Or: a gzipped int8 TFLite size to reach, in KiB (1024
            bytes); needs ``model`` and ``calibration``.
        model: The model the table was measured on (for ``target_gzip_kb``).
        calibration: Representative images for its int8 conversion.
        fragile_drop: A layer is not pruned past the sparsity at which it alone
            costs this many points; ``None``: half the accuracy above chance.

    Returns:
        An :class:`Allocation`. A target that would need fragile layers pruned
        past their safe level is ambitious, not wrong: the allocation is then the
        most that can be reached without that, ``capped`` says so (and a warning
        is logged), and ``held_back`` names the layers that capped it.

    Raises:
        ValueError: For both or neither target, or a bad value.
    """
    if (target_sparsity is None) == (target_gzip_kb is None):
        raise ValueError(
            "give exactly one of target_sparsity and target_gzip_kb. "
            f"Received: target_sparsity={target_sparsity}, target_gzip_kb={target_gzip_kb}"
        )
    if fragile_drop is None:
        fragile_drop = table.default_fragile_drop()
    _require_number("fragile_drop", fragile_drop, low=0)
    caps = {name: table.safe_sparsity(name, fragile_drop) for name in table.layers}
    reachable = _overall(table, caps)
    if target_sparsity is not None:
        _require_number("target_sparsity", target_sparsity, low=0, high=1, open_low=True)
        if target_sparsity <= reachable + 1e-9:
            return _allocate_sparsity(table, target_sparsity, caps, reachable, fragile_drop)
        allocation = _allocate_sparsity(table, reachable, caps, reachable, fragile_drop)
        allocation.target_sparsity = float(target_sparsity)
        allocation.held_back = _held_back(table, caps, target_sparsity, fragile_drop)
        return _capped(
            allocation,
            f"target_sparsity={target_sparsity:g} needs fragile layers pruned past their safe level "
            f"(fragile_drop={fragile_drop:g} points); allocated the most reachable, sparsity {reachable:.3f}",
        )

    _require_number("target_gzip_kb", target_gzip_kb, low=0, open_low=True)
    if model is None or calibration is None:
        raise ValueError(
            "target_gzip_kb needs the model and calibration images to predict file sizes. "
            f"Received: model={model!r}, calibration={'given' if calibration is not None else None}"
        )
    sizes = SizeModel(model, calibration, criterion=table.criterion)
    target_bytes = target_gzip_kb * 1024
    smallest = _allocate_sparsity(table, reachable, caps, reachable, fragile_drop)
    smallest_bytes = sizes.predict(smallest.sparsities)
    if smallest_bytes > target_bytes:
        smallest.predicted_gzip_bytes = int(smallest_bytes)
        smallest.held_back = _held_back(table, caps, 1.0, fragile_drop)
        return _capped(
            smallest,
            f"target_gzip_kb={target_gzip_kb:g} needs fragile layers pruned past their safe level "
            f"(fragile_drop={fragile_drop:g} points); allocated the smallest reachable, a predicted "
            f"{smallest_bytes / 1024:.1f} KiB int8 file at sparsity {reachable:.3f}",
        )
    low, high = 0.0, reachable
    best = (smallest, smallest_bytes)
    for _ in range(14):  # Bisection on the overall sparsity; size falls as it rises.
        middle = (low + high) / 2
        candidate = _allocate_sparsity(table, middle, caps, reachable, fragile_drop)
        predicted = sizes.predict(candidate.sparsities)
        if predicted <= target_bytes:
            high, best = middle, (candidate, predicted)
        else:
            low = middle
    allocation, predicted = best
    allocation.predicted_gzip_bytes = int(predicted)
    return allocation


def uniform_allocation(table: SensitivityTable, target_sparsity: float) -> Allocation:
    """Every layer at ``target_sparsity``: the baseline an allocation is measured against."""
    _require_number("target_sparsity", target_sparsity, low=0, high=1, open_low=True)
    sparsities = {name: float(target_sparsity) for name in table.layers}
    return Allocation(
        sparsities=sparsities,
        target_sparsity=float(target_sparsity),
        overall_sparsity=float(target_sparsity),
        predicted_drop=float(sum(table.drop(name, target_sparsity) for name in table.layers)),
        held_back=[],
    )


def _capped(allocation, reason):
    held = ", ".join(f"{entry['layer']} at {entry['safe_sparsity']:.2f}" for entry in allocation.held_back[:8])
    allocation.capped = reason + (f"; held back: {held}" if held else "")
    logging.warning("kopt.auto.allocate: %s.", allocation.capped)
    return allocation


def _held_back(table, caps, target, fragile_drop):
    return [
        {"layer": name, "safe_sparsity": caps[name], "reason": _held_reason(table, name, caps[name], fragile_drop)}
        for name in table.layers
        if caps[name] < target - 1e-9
    ]


def _allocate_sparsity(table, target, caps, reachable, fragile_drop):
    total = sum(table.sizes.values())
    needed = target * total
    current = {name: 0.0 for name in table.layers}
    heap = [(_step_cost(table, name, 0.0, caps[name]), name) for name in table.layers if caps[name] > 0]
    heapq.heapify(heap)
    pruned = 0.0
    while pruned < needed - 1e-9 and heap:
        _, name = heapq.heappop(heap)
        step = min(_STEP, caps[name] - current[name])
        gain = step * table.sizes[name]
        if pruned + gain > needed:
            step = (needed - pruned) / table.sizes[name]
            gain = needed - pruned
        current[name] += step
        pruned += gain
        if caps[name] - current[name] > 1e-9:
            heapq.heappush(heap, (_step_cost(table, name, current[name], caps[name]), name))
    held_back = _held_back(table, caps, target, fragile_drop)
    return Allocation(
        sparsities={name: float(value) for name, value in current.items()},
        target_sparsity=float(target),
        overall_sparsity=float(pruned / total),
        predicted_drop=float(sum(table.drop(name, current[name]) for name in table.layers)),
        held_back=held_back,
    )


def _step_cost(table, name, level, cap):
    step = min(_STEP, cap - level)
    cost = (table.drop(name, level + step) - table.drop(name, level)) / (step * table.sizes[name])
    return cost + _SPREAD * level


def _held_reason(table, name, cap, fragile_drop):
    beyond = [level for level in table.sparsities if level > cap + 1e-9]
    if not beyond:
        return f"{cap:.1%} is the highest level the analysis measured"
    level = beyond[0]
    return (
        f"pruning it alone to {level:.0%} costs {table.drop(name, level):.2f} points on validation without "
        f"retraining, past fragile_drop={fragile_drop:g}; held at {cap:.1%} or less"
    )


def _overall(table, sparsities):
    total = sum(table.sizes.values())
    return float(sum(sparsities[name] * table.sizes[name] for name in table.layers) / total)


def _require_number(name, value, *, low=None, high=None, open_low=False):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high
    if not ok:
        bounds = f"in ({low}, {high})" if high is not None else (f"above {low}" if open_low else f">= {low}")
        raise ValueError(f"{name} must be a number {bounds}. Received: {name}={value!r}")
