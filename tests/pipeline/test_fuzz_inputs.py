"""Fuzz: random recipe documents and npz arrays get a clean result or a ConfigError, nothing else.

The generators draw from values that broke validators before (NaN, infinities,
huge integers, wrong types, deep or shared structures, junk keys), with fixed
seeds so a failure repeats.
"""

import math
import random

import numpy as np
import pytest
import yaml

from kopt.data import load_dataset
from kopt.errors import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline.document import parse_document
from kopt.pipeline.recipe_file import recipe_from_dict

_KEYS = list(Recipe.__dataclass_fields__) + ["epocs", "", "techniques", "search"]
_STAGES = ["prune", "qat", "ptq", "cluster", "distill", "prune_structured", "auto", "nonsense"]
_PARAMS = [
    "target_sparsity", "epochs", "learning_rate", "scheme", "mode", "io_type", "preserve", "number_of_clusters",
    "fraction", "schedule", "sparsity_m_by_n", "preserve_sparsity", "init", "max_accuracy_drop", "student", "junk",
]  # fmt: skip
_SEARCH = ["tuner", "max_trials", "directory", "size_budget_kib", "space", "junk"]


def _scalar(rng):
    return rng.choice(
        [
            0, 1, -1, 3, 2**31, 2**63, 10**30, 0.5, 1e-3, -0.5, 1.5, math.nan, math.inf, -math.inf, True, False, None,
            "", "adam", "int8", "8bit", "digits", "x" * 5000, "npz:", "cosine", "sparsity", [2, 4], [], {},
        ]
    )  # fmt: skip


def _value(rng, depth=0):
    kind = rng.random()
    if depth < 3 and kind < 0.15:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if depth < 3 and kind < 0.25:
        return {rng.choice(_PARAMS + [1, None]): _value(rng, depth + 1) for _ in range(rng.randrange(3))}
    return _scalar(rng)


def _stage(rng):
    if rng.random() < 0.1:
        return _value(rng)
    stage = {"name": rng.choice(_STAGES)}
    if rng.random() < 0.9:
        stage["params"] = {rng.choice(_PARAMS): _value(rng) for _ in range(rng.randrange(5))}
    return stage


def _document(rng):
    document = {rng.choice(_KEYS): _value(rng) for _ in range(rng.randrange(6))}
    if rng.random() < 0.7:
        document["techniques"] = [_stage(rng) for _ in range(rng.randrange(4))]
    if rng.random() < 0.3:
        document["search"] = {rng.choice(_SEARCH): _value(rng) for _ in range(rng.randrange(4))}
    return document


@pytest.mark.parametrize("seed", range(4))
def test_random_recipe_documents_validate_or_raise_config_error(seed):
    rng = random.Random(seed)
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(250):
        document = _document(rng)
        try:
            recipe = recipe_from_dict(document)
        except ConfigError as err:
            assert len(str(err)) < 1200, str(err)[:300]
            outcomes["refused"] += 1
        else:
            assert isinstance(recipe, Recipe)
            outcomes["ok"] += 1
    assert outcomes["refused"] > 100  # the generator does reach the validators' refusals


def test_mutated_yaml_text_parses_or_raises_config_error():
    rng = random.Random(7)
    for _ in range(300):
        text = yaml.safe_dump(_document(rng), default_flow_style=rng.random() < 0.5)
        characters = list(text)
        for _ in range(rng.randrange(1, 6)):
            position = rng.randrange(len(characters) + 1)
            characters.insert(
                position, rng.choice(["&a ", "*a", "[", "]", "{", ":", "- ", "!!", "\t", "\n", "'", "1: "])
            )
        try:
            data = parse_document("".join(characters), "yaml", key="recipe", name="fuzz.yaml")
        except ConfigError:
            continue
        if isinstance(data, dict):
            try:
                recipe_from_dict(data)
            except ConfigError:
                pass


_DTYPES = [np.uint8, np.int8, np.int64, np.uint64, np.float16, np.float32, np.float64, np.bool_, np.complex64]


def _valid(rng):
    return {
        "x_train": rng.random((12, 5, 5)).astype(np.float32),
        "y_train": np.arange(12) % 3,
        "x_test": rng.random((6, 5, 5)).astype(np.float32),
        "y_test": np.arange(6) % 3,
    }


def _mutate(rng, arrays):
    """One random change of the kind that broke loading before."""
    key = sorted(arrays)[rng.integers(len(arrays))]
    array = arrays[key]
    change = rng.integers(8)
    with np.errstate(all="ignore"):
        if change == 0:
            arrays[key] = array.astype(_DTYPES[rng.integers(len(_DTYPES))])
        elif change == 1 and array.size:
            array = array.astype(np.float64)
            array.flat[rng.integers(array.size)] = [np.nan, np.inf, -np.inf, 1e300][rng.integers(4)]
            arrays[key] = array
        elif change == 2 and array.size:
            array = array.astype(np.int64) if array.dtype.kind == "f" else array.copy()
            array.flat[rng.integers(array.size)] = [-1, 1000, 10**9, 2**31, 2**40, 2**62][rng.integers(6)]
            arrays[key] = array
        elif change == 3:
            arrays[key] = array[: rng.integers(len(array) + 1)]
        elif change == 4:
            arrays[key] = array.reshape(len(array), -1) if array.ndim > 1 else array[:, None, None]
        elif change == 5:
            arrays[key] = np.full_like(array, array.flat[0] if array.size else 0)
        elif change == 6:
            del arrays[key]
        else:
            arrays[key] = array.astype(np.uint64) if array.dtype.kind in "iu" else array.astype(np.float16)


def test_random_npz_archives_load_or_raise_config_error(tmp_path):
    rng = np.random.default_rng(3)
    outcomes = {"ok": 0, "refused": 0}
    for case in range(60):
        arrays = _valid(rng)
        for _ in range(rng.integers(3)):
            if arrays:
                _mutate(rng, arrays)
        path = tmp_path / f"case{case}.npz"
        np.savez(path, **arrays)
        try:
            _, _, info = load_dataset(f"npz:{path}", batch_size=4)
        except ConfigError as err:
            assert len(str(err)) < 1200
            outcomes["refused"] += 1
        else:
            assert info.num_classes >= 2
            outcomes["ok"] += 1
    assert outcomes["refused"] > 10 and outcomes["ok"] > 10, outcomes
