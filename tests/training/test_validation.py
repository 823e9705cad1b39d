"""The validation split comes from the training data: disjoint, sized, reproducible."""

import numpy as np
import pytest
import tensorflow as tf

from kopt import ConfigError
from kopt.training import split_validation


def _data(count=50):
    images = np.arange(count, dtype="float32").reshape(count, 1)
    return tf.data.Dataset.from_tensor_slices((images, np.arange(count))).shuffle(count, seed=1).batch(8)


def _labels(dataset):
    return sorted(int(y) for _, batch in dataset for y in batch.numpy())


def test_split_is_disjoint_complete_and_the_same_each_time():
    rest, held_out = split_validation(_data(), 0.2, batch_size=4, seed=0)
    train_labels, validation_labels = _labels(rest), _labels(held_out)
    assert len(validation_labels) == 10 and len(train_labels) == 40
    assert sorted(train_labels + validation_labels) == list(range(50))
    assert validation_labels == _labels(split_validation(_data(), 0.2, batch_size=4, seed=0)[1])
    assert int(rest.cardinality()) == 10  # 40 examples in batches of 4: schedules know the length


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 0.001])
def test_bad_fractions(fraction):
    with pytest.raises(ConfigError, match="validation_split="):
        split_validation(_data(), fraction, batch_size=4)
