"""Sensitivity analysis: one layer at a time, the model left unchanged, cached."""

import json

import numpy as np
import pytest

from kopt.auto.sensitivity import SensitivityTable
from kopt.auto.sensitivity import sensitivity


def test_table_measures_each_layer_and_restores_the_model(trained, tmp_path):
    model, _, val = trained
    before = [w.copy() for w in model.get_weights()]
    cache = str(tmp_path / "s.json")
    table = sensitivity(model, val, sparsities=(0.5, 0.99), bits=(8, 2), cache_path=cache, verbose=0)
    for original, after in zip(before, model.get_weights()):
        np.testing.assert_array_equal(original, after)
    assert table.layers == ["hidden", "head"] and table.sizes == {"hidden": 1024, "head": 256}
    # Pruning 99% of a layer must hurt more than 50%; 2-bit weights more than 8-bit.
    for name in table.layers:
        assert table.accuracy[name][1] < table.accuracy[name][0] + 1e-9
        assert table.drop(name, 0.99) > 10
        assert table.quantized_accuracy[name][1] <= table.quantized_accuracy[name][0]
    assert abs(table.quantized_accuracy["hidden"][0] - table.baseline_accuracy) < 2
    assert "hidden" in table.format() and "8-bit" in table.format()
    # The cache is reused: a table with a changed value comes back as written.
    saved = json.load(open(cache))
    saved["baseline_accuracy"] = 12.5
    json.dump(saved, open(cache, "w"))
    assert (
        sensitivity(model, val, sparsities=(0.5, 0.99), bits=(8, 2), cache_path=cache, verbose=0).baseline_accuracy
        == 12.5
    )
    # Other settings do not reuse it.
    assert sensitivity(model, val, sparsities=(0.5,), bits=(8,), cache_path=cache, verbose=0).baseline_accuracy != 12.5


def test_curve_is_non_decreasing_and_safe_level_interpolates():
    table = SensitivityTable(
        baseline_accuracy=90.0,
        layers=["a"],
        sizes={"a": 10},
        sparsities=[0.5, 0.7, 0.9],
        accuracy={"a": [91.0, 80.0, 60.0]},
        bits=[8],
        quantized_accuracy={"a": [90.0]},
    )
    levels, drops = table.curve("a")
    assert levels.tolist() == [0.0, 0.5, 0.7, 0.9] and drops.tolist() == [0.0, 0.0, 10.0, 30.0]
    assert table.drop("a", 0.6) == pytest.approx(5.0)
    assert table.safe_sparsity("a", 20.0) == pytest.approx(0.8)
    assert table.safe_sparsity("a", 40.0) == 0.9
    assert SensitivityTable.from_dict(json.loads(json.dumps(table.to_dict()))) == table


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"sparsities": (0.5, 1.0)}, "sparsities="),
        ({"sparsities": (0.7, 0.5)}, "increasing"),
        ({"bits": (1,)}, "bits="),
        ({"criterion": "l3"}, "criterion='l3'"),
        ({"cache_path": "x.txt"}, "cache_path='x.txt'"),
    ],
)
def test_bad_arguments_are_refused(trained, kwargs, text):
    with pytest.raises(ValueError, match=text):
        sensitivity(trained[0], trained[2], verbose=0, **kwargs)


def test_default_fragile_drop_is_half_the_accuracy_above_chance(trained):
    table = SensitivityTable(
        baseline_accuracy=90.0,
        layers=["a"],
        sizes={"a": 10},
        sparsities=[0.5],
        accuracy={"a": [50.0]},
        bits=[8],
        quantized_accuracy={"a": [90.0]},
        num_classes=10,
    )
    assert table.default_fragile_drop() == pytest.approx(40.0)
    measured = sensitivity(trained[0], trained[2], sparsities=(0.5,), bits=(8,), verbose=0)
    assert measured.num_classes == 4
