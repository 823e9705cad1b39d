"""Tests for kopt.extras: optional dependencies name the extra that brings them."""

import sys

import pytest

from kopt import extras
from kopt.data import load_dataset


def test_installed_extra_is_imported():
    assert extras.require("tensorflow_datasets", "mnist").__name__ == "tensorflow_datasets"


@pytest.mark.parametrize("module, extra, distribution", [
    ("keras_tuner", "tune", "keras-tuner"), ("tensorflow_datasets", "datasets", "tensorflow-datasets"),
])  # fmt: skip
def test_missing_extra_names_feature_distribution_and_install_line(monkeypatch, module, extra, distribution):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(extras.MissingExtraError) as caught:
        extras.require(module, "the feature")
    message = str(caught.value)
    assert message.startswith(f"the feature needs {distribution}, which is not installed")
    assert f'pip install "kopt-keras[{extra}]"' in message
    assert isinstance(caught.value, ImportError)


def test_unknown_module_is_refused_with_the_received_value():
    with pytest.raises(ValueError, match="Received: module='sklearn'"):
        extras.require("sklearn", "x")


def test_tfds_dataset_without_tensorflow_datasets_names_the_dataset(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(
        extras.MissingExtraError, match=r"dataset='mnist' needs tensorflow-datasets.*kopt-keras\[datasets\]"
    ):
        load_dataset("mnist")


def test_digits_need_no_optional_dependency(monkeypatch):
    for module in ("tensorflow_datasets", "keras_tuner", "sklearn"):
        monkeypatch.setitem(sys.modules, module, None)
    train, _, info = load_dataset("digits", batch_size=16)
    assert info.train_examples == 1437 and next(iter(train))[0].shape == (16, 8, 8, 1)


def test_search_without_keras_tuner_names_the_tune_extra():
    import subprocess

    code = "import sys; sys.modules['keras_tuner'] = None; from kopt.pipeline import tune"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "MissingExtraError: hyperparameter search (--tune" in result.stderr
    assert 'pip install "kopt-keras[tune]"' in result.stderr
