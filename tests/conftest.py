"""Shared fixtures: paths to the repository's shared data."""

import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_NPZ = os.path.join(REPO_ROOT, "..", "shared", "data", "mnist-22k.npz")


@pytest.fixture(scope="session")
def mnist_npz():
    """Path to the real MNIST subset in ../shared/data (see its README)."""
    if not os.path.isfile(MNIST_NPZ):
        pytest.fail(f"{MNIST_NPZ} is missing; tests need the shared data beside the checkout")
    return MNIST_NPZ


@pytest.fixture
def mnist_subset(mnist_npz, tmp_path):
    """``make(name, train, test)``: the first images of each split as ``tmp_path / name``, an npz in the same layout."""
    import numpy as np

    def make(name, train, test):
        data = np.load(mnist_npz)
        path = tmp_path / name
        np.savez(
            path,
            x_train=data["x_train"][:train],
            y_train=data["y_train"][:train],
            x_test=data["x_test"][:test],
            y_test=data["y_test"][:test],
        )
        return path

    return make


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same Python, NumPy and Keras random state.

    Unseeded, a test's weights depended on which tests had run before it in its
    pytest-xdist worker, which differs from run to run: a check that holds on most
    initializations (a rounding tie in a QAT file, test_conv_lowering) failed now
    and then. A test that needs other draws seeds them itself.
    """
    import keras

    keras.utils.set_random_seed(0)
