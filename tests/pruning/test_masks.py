"""Tests for kopt.pruning.masks: exact counts, block tiles and M:N groups."""

import numpy as np
import pytest
from keras import ops

from kopt.pruning import masks


def _numpy(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.73, 0.9, 0.999])
def test_magnitude_mask_zeroes_exactly_the_smallest(sparsity):
    weights = np.random.default_rng(0).normal(size=(7, 11, 3)).astype("float32")
    mask, threshold = masks.magnitude_mask(weights, sparsity)
    mask = _numpy(mask)
    size = weights.size
    expected_zeros = min(round(size * sparsity), size - 1)
    assert mask.shape == weights.shape and mask.dtype == np.float32
    assert int((mask == 0).sum()) == expected_zeros
    magnitudes = np.abs(weights)
    assert magnitudes[mask == 1].min() == pytest.approx(float(_numpy(threshold)))
    if expected_zeros:
        assert magnitudes[mask == 0].max() <= magnitudes[mask == 1].min()


def test_magnitude_mask_is_exact_with_ties():
    # tfmot's ">= threshold" test keeps every tied weight; the count must not drift.
    weights = np.zeros((10, 10), "float32")
    weights[0, :5] = 1.0
    mask = _numpy(masks.magnitude_mask(weights, 0.5)[0])
    assert int((mask == 0).sum()) == 50
    assert mask[0, :5].tolist() == [1.0] * 5


def test_magnitude_mask_accepts_a_tensor_sparsity():
    weights = np.arange(1, 21, dtype="float32").reshape(4, 5)
    mask, threshold = masks.magnitude_mask(weights, ops.convert_to_tensor(0.25))
    assert _numpy(mask).ravel().tolist() == [0.0] * 5 + [1.0] * 15
    assert float(_numpy(threshold)) == 6.0


@pytest.mark.parametrize("pooling", ["AVG", "MAX"])
def test_block_mask_zeroes_whole_tiles(pooling):
    weights = np.random.default_rng(1).normal(size=(8, 12)).astype("float32")
    mask = _numpy(masks.block_mask(weights, 0.5, (2, 4), pooling)[0])
    tiles = mask.reshape(4, 2, 3, 4)
    # Every tile is all ones or all zeros, and half of the 12 tiles are zero.
    assert np.all(tiles.min(axis=(1, 3)) == tiles.max(axis=(1, 3)))
    assert int((tiles.max(axis=(1, 3)) == 0).sum()) == 6


def test_block_mask_scores_tiles_by_average_or_maximum():
    weights = np.array([[0.0, 3.0, 1.0, 1.0], [0.0, 3.0, 1.0, 1.0]], "float32")
    # Left tile: avg 1.5, max 3. Right tile: avg 1, max 1.
    avg_mask = _numpy(masks.block_mask(weights, 0.5, (2, 2), "AVG")[0])
    max_mask = _numpy(masks.block_mask(weights, 0.5, (2, 2), "MAX")[0])
    assert avg_mask[:, :2].min() == 1 and avg_mask[:, 2:].max() == 0
    assert max_mask[:, :2].min() == 1 and max_mask[:, 2:].max() == 0
    weights[:, 1] = 1.2  # left: avg 0.6 < 1, max 1.2 > 1
    avg_mask = _numpy(masks.block_mask(weights, 0.5, (2, 2), "AVG")[0])
    assert avg_mask[:, :2].max() == 0 and avg_mask[:, 2:].min() == 1


def test_block_mask_handles_partial_edge_tiles_and_size_one_dims():
    weights = np.random.default_rng(2).normal(size=(1, 1, 5, 7)).astype("float32")  # a 1x1 conv kernel
    mask = _numpy(masks.block_mask(weights, 0.5, (2, 3), "AVG")[0])
    assert mask.shape == weights.shape
    matrix = mask.reshape(5, 7)
    for row in range(0, 5, 2):
        for col in range(0, 7, 3):
            tile = matrix[row : row + 2, col : col + 3]
            assert tile.min() == tile.max()


def test_block_mask_rejects_higher_rank_weights():
    with pytest.raises(ValueError, match=r"weight shape=\(3, 3, 4, 8\)"):
        masks.block_mask(np.ones((3, 3, 4, 8), "float32"), 0.5, (1, 4))


@pytest.mark.parametrize("shape", [(16, 6), (3, 3, 8, 5), (5, 12, 4)])
def test_two_of_four_mask_along_input_channels(shape):
    weights = np.random.default_rng(3).normal(size=shape).astype("float32")
    mask = _numpy(masks.m_by_n_mask(weights, (2, 4))[0])
    # Input channels are axis -2: every run of 4 along it holds exactly 2 zeros,
    # and the kept two are the larger ones.
    groups = np.moveaxis(mask, -2, -1).reshape(-1, 4)
    assert np.all((groups == 0).sum(axis=1) == 2)
    magnitude_groups = np.moveaxis(np.abs(weights), -2, -1).reshape(-1, 4)
    kept = np.where(groups == 1, magnitude_groups, np.inf).min(axis=1)
    dropped = np.where(groups == 0, magnitude_groups, -np.inf).max(axis=1)
    assert np.all(dropped <= kept)


def test_m_by_n_partial_group_keeps_its_largest_weights():
    weights = np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [0.5]], "float32")  # 6 input channels
    mask = _numpy(masks.m_by_n_mask(weights, (2, 4))[0]).ravel()
    # First group of 4 keeps 3 and 4; the partial group (5, 0.5) keeps both.
    assert mask.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("m_by_n, shape, message", [((4, 4), (8, 8), "0 < m < n"), ((2, 4), (8,), "rank >= 2")])
def test_m_by_n_validation(m_by_n, shape, message):
    with pytest.raises(ValueError, match=message):
        masks.m_by_n_mask(np.ones(shape, "float32"), m_by_n)


def test_compute_mask_dispatches_and_checks_pooling():
    weights = np.random.default_rng(4).normal(size=(8, 8)).astype("float32")
    unstructured = _numpy(masks.compute_mask(weights, 0.5)[0])
    assert int((unstructured == 0).sum()) == 32
    m_by_n = _numpy(masks.compute_mask(weights, 0.9, sparsity_m_by_n=(1, 4))[0])
    assert int((m_by_n == 0).sum()) == 16  # m/n, whatever the schedule says
    with pytest.raises(ValueError, match="block_pooling_type='MEAN'"):
        masks.compute_mask(weights, 0.5, block_size=(2, 2), block_pooling_type="MEAN")


def test_random_mask_is_fixed_by_its_seed_nested_and_not_by_magnitude():
    weights = np.random.default_rng(5).normal(size=(40, 50)).astype("float32")
    first = _numpy(masks.random_mask(weights, 0.5, seed=3)[0])
    assert int((first == 0).sum()) == 1000
    np.testing.assert_array_equal(first, _numpy(masks.random_mask(weights, 0.5, seed=3)[0]))
    assert (first != _numpy(masks.random_mask(weights, 0.5, seed=4)[0])).mean() > 0.3
    # Rising sparsity on the masked weights keeps every earlier zero.
    second = _numpy(masks.random_mask(weights * first, 0.8, seed=3)[0])
    assert int((second == 0).sum()) == 1600 and np.all(second[first == 0] == 0)
    # Chosen regardless of magnitude: the pruned half is about as large as the kept half.
    magnitudes = np.abs(weights)
    assert abs(magnitudes[first == 0].mean() - magnitudes[first == 1].mean()) < 0.1
    via_dispatch = _numpy(masks.compute_mask(weights, 0.5, criterion="random", seed=3)[0])
    np.testing.assert_array_equal(via_dispatch, first)
