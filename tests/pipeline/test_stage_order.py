"""Recipes go through the same order and conflict rules as kopt-optimize's flags."""

import pytest

from kopt.errors import ConfigError
from kopt.pipeline.recipe_file import recipe_from_dict


def _recipe(*stages):
    return recipe_from_dict({"techniques": [{"name": name, "params": params} for name, params in stages]})


PRUNE = ("prune", {"target_sparsity": 0.5})
CLUSTER = ("cluster", {"number_of_clusters": 8, "preserve_sparsity": True})


@pytest.mark.parametrize(
    "stages, key, reason",
    [
        ([("ptq", {"mode": "int8"}), PRUNE], "techniques[0].name=ptq", "int8 export would be dropped"),
        ([("qat", {}), PRUNE], "techniques[0].name=qat", "int8 export would be dropped"),
        (
            [PRUNE, ("qat", {"preserve": ["sparsity"]}), ("ptq", {"mode": "int8"})],
            "techniques[2].name=ptq",
            "choose qat or ptq, not both",
        ),
        ([("qat", {}), ("ptq", {"mode": "dynamic"})], "techniques[1].name=ptq", "choose qat or ptq"),
        ([PRUNE, PRUNE], "techniques[1].name=prune", "already has a prune stage"),
        ([("cluster", {"number_of_clusters": 8}), PRUNE], "techniques[1].name=prune", "cannot come after cluster"),
        ([PRUNE, ("prune_structured", {"fraction": 0.5})], "techniques[1].name=prune_structured", "cannot come after"),
        ([PRUNE, ("distill", {})], "techniques[1].name=distill", "must come first"),
        (
            [("auto", {}), PRUNE],
            "techniques[1].name=prune",
            "conflicts with auto, which chooses pruning and int8 quantization itself; drop prune or auto",
        ),
        ([PRUNE, ("qat", {})], "techniques[1].params.preserve=(not set)", "must say what it keeps"),
        ([PRUNE, ("cluster", {"number_of_clusters": 8})], "techniques[1].params.preserve_sparsity", "must say"),
        ([CLUSTER, ("qat", {})], "techniques[1].params.preserve", "must say what it keeps"),
    ],
)
def test_misleading_orders_and_combinations_are_refused(stages, key, reason):
    with pytest.raises(ConfigError) as caught:
        _recipe(*stages)
    assert str(caught.value).startswith(key), str(caught.value)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    "stages",
    [
        [PRUNE, CLUSTER, ("qat", {"preserve": ["sparsity", "clusters"]})],
        [("distill", {}), ("prune_structured", {"fraction": 0.5}), PRUNE, ("ptq", {"mode": "int8"})],
        [PRUNE, ("qat", {"preserve": []})],  # stated: the zeros may change
        [PRUNE, ("qat", {"scheme": "16x8", "preserve": []})],
        [("distill", {}), ("auto", {})],
        [("ptq", {"mode": "float16"})],
    ],
)
def test_the_orders_flags_build_are_accepted(stages):
    assert [spec.name for spec in _recipe(*stages).techniques] == [name for name, _ in stages]
