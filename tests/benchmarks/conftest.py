"""Fixtures shared by the benchmark tests."""

import numpy as np
import pytest


@pytest.fixture
def tiny_cifar(tmp_path):
    """``make(train, test)``: the path of a random CIFAR-shaped archive of that many images."""

    def make(train, test):
        archive = tmp_path / f"tiny-{train}-{test}.npz"
        rng = np.random.default_rng(0)
        np.savez(
            archive,
            x_train=rng.integers(0, 255, (train, 32, 32, 3), dtype=np.uint8),
            y_train=rng.integers(0, 10, train),
            x_test=rng.integers(0, 255, (test, 32, 32, 3), dtype=np.uint8),
            y_test=rng.integers(0, 10, test),
        )
        return str(archive)

    return make


@pytest.fixture
def tiny_rows():
    """``make(train, test)``: random MNIST-rows arrays ``(x_train, y_train, x_test, y_test)`` in [0, 1)."""

    def make(train, test):
        rng = np.random.default_rng(0)
        return (
            rng.random((train, 28, 28)).astype("float32"),
            rng.integers(0, 10, train),
            rng.random((test, 28, 28)).astype("float32"),
            rng.integers(0, 10, test),
        )

    return make
