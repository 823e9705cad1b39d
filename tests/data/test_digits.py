"""Tests for kopt.data.digits: the embedded digits file."""

import importlib.util

import numpy as np
import pytest

from kopt.data import digits


def test_arrays_have_the_documented_shapes_range_and_class_balance():
    x_train, y_train, x_test, y_test = digits.digits_arrays()
    assert x_train.shape == (1437, 8, 8, 1) and x_test.shape == (360, 8, 8, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    assert 0.0 == x_train.min() and x_train.max() == 1.0
    # Stratified: every class holds about a fifth of its examples in the test split.
    for label in range(10):
        share = np.sum(y_test == label) / (np.sum(y_test == label) + np.sum(y_train == label))
        assert 0.18 < share < 0.22, (label, share)
    # No image is in both splits (the split is of examples, not a resample).
    train_rows = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    overlap = sum(row.tobytes() in train_rows for row in x_test.reshape(len(x_test), -1))
    assert overlap < 5  # the UCI set holds a handful of duplicate bitmaps


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn is not installed")
def test_embedded_split_is_scikit_learns_stratified_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    source = load_digits()
    expected = train_test_split(
        source.images / 16.0, source.target, test_size=0.2, stratify=source.target, random_state=20151
    )
    x_train, y_train, x_test, y_test = digits.digits_arrays()
    np.testing.assert_array_equal(x_train[..., 0], expected[0].astype(np.float32))
    np.testing.assert_array_equal(x_test[..., 0], expected[1].astype(np.float32))
    np.testing.assert_array_equal(y_train, expected[2])
    np.testing.assert_array_equal(y_test, expected[3])


def test_missing_file_names_the_path(monkeypatch, tmp_path):
    missing = str(tmp_path / "digits.npz")
    monkeypatch.setattr(digits, "_PATH", missing)
    with pytest.raises(FileNotFoundError, match="digits.npz"):
        digits.digits_arrays()
