"""as_arrays, split_validation and canonical_order: shapes, reproducibility, bad input."""

import numpy as np
import pytest
import tensorflow as tf

from kopt.auto.data import as_arrays
from kopt.auto.data import canonical_order
from kopt.auto.data import split_validation


def test_as_arrays_reads_pairs_and_batched_datasets():
    x, y = np.arange(20, dtype="float32").reshape(10, 2), np.arange(10)
    images, labels = as_arrays(tf.data.Dataset.from_tensor_slices((x, y)).batch(3))
    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(labels, y)
    assert as_arrays((x, y))[0].dtype == np.float32


@pytest.mark.parametrize("bad", [(np.zeros((3, 2)), np.zeros(2)), 5, []])
def test_as_arrays_refuses_bad_data(bad):
    with pytest.raises(ValueError, match="Received"):
        as_arrays(bad, name="val_data")


def test_split_is_disjoint_complete_and_seeded():
    x, y = np.arange(100, dtype="float32")[:, None], np.arange(100)
    (x_fit, y_fit), (x_val, y_val) = split_validation((x, y), 0.1, seed=3)
    assert len(y_val) == 10 and sorted(np.concatenate([y_fit, y_val]).tolist()) == list(range(100))
    np.testing.assert_array_equal(split_validation((x, y), 0.1, seed=3)[1][1], y_val)
    assert not np.array_equal(split_validation((x, y), 0.1, seed=4)[1][1], y_val)
    with pytest.raises(ValueError, match="fraction=1.5"):
        split_validation((x, y), 1.5)


def test_canonical_order_ignores_the_incoming_order():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 3, 3)), rng.integers(0, 5, 50)
    order = rng.permutation(50)
    first, second = canonical_order(x, y), canonical_order(x[order], y[order])
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
