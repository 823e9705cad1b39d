"""A seed repeats NumPy, TensorFlow and Keras draws; bad seeds are config errors."""

import keras
import numpy as np
import pytest

from kopt import ConfigError
from kopt.training import make_reproducible


def _draws():
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    return np.random.rand(), keras.ops.convert_to_numpy(keras.random.uniform((2,))), layer.kernel.numpy()


def test_same_seed_same_draws_other_seed_other_draws():
    make_reproducible(3, deterministic=False)
    first = _draws()
    make_reproducible(3, deterministic=False)
    again = _draws()
    make_reproducible(4, deterministic=False)
    other = _draws()
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_bad_seed(seed):
    with pytest.raises(ConfigError, match="seed="):
        make_reproducible(seed, deterministic=False)
