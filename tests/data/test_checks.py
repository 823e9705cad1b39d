"""Bad images and labels are refused at load time, naming the array and the entry."""

import numpy as np
import pytest

from kopt import ConfigError
from kopt.data import load_dataset
from kopt.data.checks import check_finite_images
from kopt.data.checks import check_labels


def _npz(tmp_path, *, x_train=None, y_train=None, x_test=None, y_test=None):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((40, 6, 6)).astype(np.float32) if x_train is None else x_train,
        "y_train": np.arange(40) % 4 if y_train is None else y_train,
        "x_test": rng.random((12, 6, 6)).astype(np.float32) if x_test is None else x_test,
        "y_test": np.arange(12) % 4 if y_test is None else y_test,
    }
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


def _labels_with(value, dtype=np.int64, count=40):
    labels = (np.arange(count) % 4).astype(dtype)
    labels[7] = value
    return labels


@pytest.mark.parametrize("split", ["x_train", "x_test"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_single_non_finite_pixel_is_refused_in_either_split(tmp_path, split, bad):
    images = np.random.default_rng(1).random((40 if split == "x_train" else 12, 6, 6)).astype(np.float32)
    images[3, 2, 1] = bad
    with pytest.raises(ConfigError, match=rf"{split} holds 1 NaN or infinite pixel values \(images \[3\]\)"):
        load_dataset(_npz(tmp_path, **{split: images}))


def test_float64_values_that_overflow_float32_are_refused(tmp_path):
    images = np.random.default_rng(1).random((40, 6, 6))
    images[0, 0, 0] = 1e300
    with pytest.raises(ConfigError, match="x_train holds 1 NaN or infinite"):
        load_dataset(_npz(tmp_path, x_train=images))


@pytest.mark.parametrize(
    "labels, message",
    [
        (_labels_with(1000), "labels run up to 1000, which means 1001 classes, but 996 of them have no training"),
        (_labels_with(10**9), r"y_train\[7\] is 1000000000, which would mean 1000000001 classes"),
        (_labels_with(2**31), r"y_train\[7\] is 2147483648"),
        (_labels_with(2**32 + 3, dtype=np.uint64), r"y_train\[7\] is 4294967299"),
        (_labels_with(-1), r"y_train\[7\] is -1; labels are class indices from 0"),
        (np.full(40, 3), "every training label is 3; a classifier needs at least 2 classes"),
    ],
)
def test_labels_that_would_silently_train_the_wrong_model_are_refused(tmp_path, labels, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_dataset(_npz(tmp_path, y_train=labels))
    assert len(str(caught.value)) < 400


def test_a_test_label_outside_the_training_classes_is_refused(tmp_path):
    test = np.arange(12) % 4
    test[5] = 9
    with pytest.raises(ConfigError, match="labels run up to 9, which means 10 classes, but 6 of them"):
        load_dataset(_npz(tmp_path, y_test=test))


def test_a_stated_class_count_allows_absent_classes_and_bounds_the_labels(tmp_path):
    dataset = _npz(tmp_path)
    _, _, info = load_dataset(dataset, num_classes=6)  # classes 4 and 5 have no examples here
    assert info.num_classes == 6
    with pytest.raises(ConfigError, match=r"num_classes=3: .* y_train\[3\] is 3, outside the classes 0..2"):
        load_dataset(dataset, num_classes=3)
    for bad in (1, 0, True, 2.5, 10**6):
        with pytest.raises(ConfigError, match=f"num_classes={bad}: must be an integer from 2 to 100000"):
            load_dataset(dataset, num_classes=bad)


def test_good_data_loads_with_int32_labels(tmp_path):
    train, _, info = load_dataset(_npz(tmp_path, y_train=(np.arange(40) % 4).astype(np.uint64)))
    assert info.num_classes == 4
    assert next(iter(train))[1].dtype.name == "int32"


def test_the_checks_work_on_plain_arrays():
    check_finite_images("d", "x", np.zeros((3, 2, 2), np.uint8))
    with pytest.raises(ConfigError, match=r"images \[0, 1, 2, 3, 4\] ..."):
        check_finite_images("d", "x", np.full((9000, 2), np.nan, np.float32))
    assert check_labels("d", np.array([1, 0, 2]), np.array([2])) == 3
