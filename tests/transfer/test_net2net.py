"""Net2Net's maths: the replication map, the counts, the identity kernel, matching positions."""

import doctest
import importlib

import numpy as np
import pytest

from kopt.transfer.net2net import identity_kernel
from kopt.transfer.net2net import match_positions
from kopt.transfer.net2net import replication_counts
from kopt.transfer.net2net import replication_map


def test_the_map_keeps_every_old_unit_and_draws_the_rest_with_the_seed():
    mapping = replication_map(4, 100, rng=np.random.default_rng(7))
    assert mapping[:4].tolist() == [0, 1, 2, 3] and mapping.min() == 0 and mapping.max() == 3
    assert len(set(mapping[4:].tolist())) == 4  # 96 uniform draws from 4 units hit every unit
    again = replication_map(4, 100, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(mapping, again)
    counts = replication_counts(mapping, 4)
    assert counts.sum() == 100 and (counts >= 1).all()


def test_copies_divided_by_their_count_sum_to_the_original():
    rng = np.random.default_rng(0)
    mapping = replication_map(5, 12, rng=rng)
    counts = replication_counts(mapping, 5)
    hidden = rng.normal(size=(3, 5))
    weights = rng.normal(size=(5, 2))
    wide_hidden = hidden[:, mapping]
    wide_weights = weights[mapping] / counts[mapping][:, None]
    np.testing.assert_allclose(wide_hidden @ wide_weights, hidden @ weights)


@pytest.mark.parametrize("units, new_units", [(3, 3), (3, 2), (0, 2)])
def test_the_map_refuses_a_width_that_does_not_grow(units, new_units):
    with pytest.raises(ValueError, match=f"units={units}, new_units={new_units}"):
        replication_map(units, new_units, rng=np.random.default_rng(0))


def test_identity_kernels_pass_the_input_through():
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(x @ identity_kernel(3), x)
    kernel = identity_kernel(3, (3, 5))
    assert kernel.shape == (3, 5, 3, 3) and kernel.sum() == 3 and (kernel[1, 2] == np.eye(3)).all()
    with pytest.raises(ValueError, match=r"odd window sides. Received: kernel_size=\(2,\)"):
        identity_kernel(3, (2,))


def test_positions_follow_each_key_in_order_through_repeats_and_tiles():
    # A depthwise multiplier 2 over channels a, b, then a third channel copying b.
    old = ["a", "a", "b", "b"]
    new = ["a", "a", "b", "b", "c", "c"]
    assert match_positions(old, new, lambda key: "b" if key == "c" else key).tolist() == [0, 1, 2, 3, 2, 3]
    with pytest.raises(ValueError, match="Entry 1 of the widened tensor"):
        match_positions(["a"], ["a", "a"], lambda key: key)


@pytest.mark.parametrize("module", ["net2net", "overlap", "report", "weights", "widen", "widen_weights", "deepen"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(f"kopt.transfer.{module}"))
    assert result.attempted > 0 and result.failed == 0
