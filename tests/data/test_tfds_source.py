"""TFDS datasets through kopt.data, for real, with tfds.testing.mock_data."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from kopt import ConfigError
from kopt.data import load_dataset


@pytest.mark.parametrize(
    "name, shape, classes",
    [("mnist", (28, 28, 1), 10), ("tfds:fashion_mnist", (28, 28, 1), 10), ("cifar10", (32, 32, 3), 10)],
)
def test_tfds_datasets_load_through_the_tfds_reader(name, shape, classes):
    with tfds.testing.mock_data(num_examples=12):
        train, test, info = load_dataset(name, batch_size=5, download=False)
        images, labels = next(iter(train))
        test_batches = list(test)
    assert info.input_shape == shape and info.num_classes == classes
    assert images.shape == (5,) + shape and images.dtype == np.float32
    assert float(np.max(images)) <= 1.0 and float(np.min(images)) >= 0.0
    assert labels.dtype == np.int32
    assert sum(len(y) for _, y in test_batches) == 12
    assert info.test_examples == 12 and info.train_examples == 12


def test_missing_data_without_download_says_how_to_get_it(tmp_path):
    with pytest.raises(ConfigError, match="--download") as err:
        load_dataset("mnist", data_dir=str(tmp_path), download=False)
    assert err.value.key == "dataset" and err.value.value == "mnist"
    assert str(tmp_path) in str(err.value)


def test_unknown_tfds_name():
    with pytest.raises(ConfigError, match="has no dataset 'no_such_dataset_xyz'"):
        load_dataset("tfds:no_such_dataset_xyz")


def test_non_image_classification_dataset_is_refused():
    # imdb_reviews is (text, label): supervised, but not images.
    with pytest.raises(ConfigError, match="not an Image"):
        load_dataset("tfds:imdb_reviews")


def test_variable_size_images_need_an_image_size_and_then_load_with_their_class_names():
    with tfds.testing.mock_data(num_examples=6):  # mock tf_flowers photos come in random sizes
        with pytest.raises(ConfigError, match=r"variable shape \(None, None, 3\); give --image_size=H,W"):
            load_dataset("tfds:tf_flowers")
        train, _, info = load_dataset("tfds:tf_flowers", image_size=(20, 24), batch_size=3)
        images, _ = next(iter(train))
    assert images.shape == (3, 20, 24, 3) and info.input_shape == (20, 24, 3)
    assert info.class_names == ("dandelion", "daisy", "tulips", "sunflowers", "roses")
    assert info.source.endswith("resized to 20x24")
