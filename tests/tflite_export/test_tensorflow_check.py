"""Tests for tflite_export.tensorflow_check: the installed TensorFlow, checked before import."""

import subprocess
import sys
import warnings

import pytest

from tflite_export import tensorflow_check


def test_supported_version_passes_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tensorflow_check.check_tensorflow({"tensorflow": "2.19.1"}) == {"tensorflow": "2.19.1"}


def test_this_environment_has_exactly_one_supported_tensorflow():
    installed = tensorflow_check.installed_tensorflow()
    assert len(installed) == 1, installed
    tensorflow_check.check_tensorflow()


def test_too_old_tensorflow_names_distribution_version_and_the_way_out():
    with pytest.raises(
        ImportError, match=r"2\.19 or newer.*tensorflow-cpu 2\.15\.1.*pip install --upgrade tensorflow-cpu"
    ):
        tensorflow_check.check_tensorflow({"tensorflow-cpu": "2.15.1"})


def test_two_distributions_warn_and_name_both():
    with pytest.warns(UserWarning, match="tensorflow 2.21.0, tensorflow-cpu 2.21.0"):
        tensorflow_check.check_tensorflow({"tensorflow": "2.21.0", "tensorflow-cpu": "2.21.0"})


def test_untested_newer_tensorflow_warns_but_imports():
    with pytest.warns(UserWarning, match="tested with TensorFlow 2.19 to 2.21.*tf-nightly 2.23.0.dev20270101"):
        tensorflow_check.check_tensorflow({"tf-nightly": "2.23.0.dev20270101"})


@pytest.mark.parametrize("package", ["kopt", "tflite_export"])
def test_import_without_tensorflow_says_how_to_install_one(package):
    # A None entry in sys.modules makes the package unfindable, as if it were not installed.
    code = f"import sys; sys.modules['tensorflow'] = None; import {package}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "ImportError: kopt needs TensorFlow, and none is installed" in result.stderr
    assert 'pip install "kopt-keras[cpu]"' in result.stderr and "kopt-keras[and-cuda]" in result.stderr


def test_plain_imports_load_no_tensorflow():
    code = "import sys, kopt, tflite_export; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
