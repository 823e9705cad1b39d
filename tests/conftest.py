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
