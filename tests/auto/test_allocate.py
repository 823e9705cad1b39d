"""Allocation: reaches the target, prefers insensitive layers, respects safe levels."""

import numpy as np
import pytest

from kopt import pruning
from kopt.auto.allocate import allocate
from kopt.auto.allocate import uniform_allocation
from kopt.auto.sensitivity import SensitivityTable


def _table(**accuracy):
    sizes = {"small": 100, "big": 900, "mid": 500}
    names = list(accuracy)
    return SensitivityTable(
        baseline_accuracy=98.0,
        layers=names,
        sizes={n: sizes[n] for n in names},
        sparsities=[0.5, 0.8, 0.95],
        accuracy=accuracy,
        bits=[8],
        quantized_accuracy={n: [98.0] for n in names},
    )


def test_target_met_exactly_with_the_least_predicted_loss():
    table = _table(big=[98.0, 96.0, 80.0], mid=[97.0, 90.0, 70.0])
    allocation = allocate(table, target_sparsity=0.7)
    total = sum(table.sizes.values())
    overall = sum(allocation.sparsities[n] * table.sizes[n] for n in table.layers) / total
    assert overall == pytest.approx(0.7, abs=1e-9) and allocation.overall_sparsity == pytest.approx(0.7)
    # The less sensitive (and larger) layer carries more sparsity, and the prediction beats uniform.
    assert allocation.sparsities["big"] > 0.7 > allocation.sparsities["mid"]
    assert allocation.predicted_drop < uniform_allocation(table, 0.7).predicted_drop
    assert allocation.held_back == []


def test_fragile_layer_is_held_back_with_a_reason():
    table = _table(small=[60.0, 20.0, 10.0], big=[98.0, 97.5, 95.0])
    allocation = allocate(table, target_sparsity=0.8, fragile_drop=25.0)
    assert allocation.sparsities["small"] <= table.safe_sparsity("small", 25.0) + 1e-9
    (held,) = allocation.held_back
    assert held["layer"] == "small" and "fragile_drop=25" in held["reason"] and "50%" in held["reason"]


def test_an_ambitious_target_gets_the_most_reachable_allocation_and_says_why():
    table = _table(small=[60.0, 20.0, 10.0], big=[98.0, 97.5, 95.0])
    reachable = allocate(table, target_sparsity=0.8, fragile_drop=25.0)
    assert reachable.capped is None
    allocation = allocate(table, target_sparsity=0.95, fragile_drop=25.0)
    # Every layer at its safe level: the most that can be reached.
    safe = {name: table.safe_sparsity(name, 25.0) for name in table.layers}
    reachable_sparsity = (safe["small"] * 100 + safe["big"] * 900) / 1000
    assert safe["small"] < 0.5 and reachable_sparsity < 0.95
    assert allocation.overall_sparsity == pytest.approx(reachable_sparsity, abs=1e-9)
    assert allocation.sparsities == pytest.approx(safe)
    assert allocation.target_sparsity == 0.95
    assert "target_sparsity=0.95" in allocation.capped and f"{reachable_sparsity:.3f}" in allocation.capped
    assert f"small at {safe['small']:.2f}" in allocation.capped
    assert [entry["layer"] for entry in allocation.held_back] == ["small"]
    assert allocation.to_dict()["capped"] == allocation.capped


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({}, "exactly one"),
        ({"target_sparsity": 0.5, "target_gzip_kb": 3}, "exactly one"),
        ({"target_sparsity": 1.0}, "target_sparsity=1.0"),
        ({"target_sparsity": 0.5, "fragile_drop": -1}, "fragile_drop=-1"),
        ({"target_gzip_kb": 3}, "needs the model"),
    ],
)
def test_bad_targets_are_refused(kwargs, text):
    with pytest.raises(ValueError, match=text):
        allocate(_table(big=[98.0, 97.0, 90.0]), **kwargs)


def test_gzip_target_reaches_a_predicted_size(trained):
    from kopt.auto.sensitivity import sensitivity
    from kopt.auto.size import SizeModel

    model, fit, val = trained
    table = sensitivity(model, val, sparsities=(0.5, 0.8, 0.95), bits=(8,), verbose=0)
    sizes = SizeModel(model, fit[0][:64])
    dense_bytes = sizes.predict({})
    target_kb = (dense_bytes - 0.4 * (dense_bytes - sizes.fixed_bytes)) / 1024
    allocation = allocate(table, target_gzip_kb=target_kb, model=model, calibration=fit[0][:64], fragile_drop=100)
    assert allocation.predicted_gzip_bytes <= target_kb * 1024
    assert 0 < allocation.overall_sparsity < 0.95


def test_schedules_feed_prune_low_magnitude(trained):
    model = trained[0]
    table = _table(big=[98.0, 97.0, 90.0], mid=[98.0, 97.0, 90.0])
    table.layers, table.sizes = ["hidden", "head"], {"hidden": 1024, "head": 256}
    table.accuracy = {"hidden": [98.0, 97.9, 90.0], "head": [90.0, 80.0, 70.0]}
    allocation = allocate(table, target_sparsity=0.6)
    layer_schedules = allocation.schedules(end_step=4, frequency=1)
    pruned = pruning.prune_low_magnitude(model, layer_schedules=layer_schedules)
    wrapped = {layer.layer.name: layer for layer in pruned.layers if isinstance(layer, pruning.PruneLowMagnitude)}
    for name, target in allocation.sparsities.items():
        if target == 0:
            assert name not in wrapped
        else:
            _, sparsity = wrapped[name].pruning_schedule(4)
            assert float(sparsity) == pytest.approx(target, abs=1e-6)
    assert np.isclose(allocation.overall_sparsity, 0.6)
