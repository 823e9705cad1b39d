"""Which TensorFlow is installed, checked before anything imports it.

kopt installs no TensorFlow unless asked: the build is the user's choice (the
CPU wheel, the CUDA wheel, a TPU VM's or a company's own), chosen through the
distribution's extras (``kopt-keras[cpu]``, ``kopt-keras[and-cuda]``) or installed
beforehand. So ``import kopt`` and ``import tflite_export`` check, without importing
it, that a TensorFlow is there and recent enough, and say how to get one if not.
Two TensorFlow distributions installed together (``tensorflow`` and
``tensorflow-cpu`` both write the ``tensorflow`` package; whichever was installed
last wins) get a warning that names them.
"""

import importlib.metadata
import importlib.util
import re
import warnings

__all__ = [
    "INSTALL_HINT",
    "MIN_TENSORFLOW",
    "NEWEST_TESTED",
    "TENSORFLOW_DISTRIBUTIONS",
    "check_tensorflow",
    "installed_tensorflow",
]

MIN_TENSORFLOW = (2, 19)
NEWEST_TESTED = (2, 21)
# Distributions that install the importable package ``tensorflow``.
TENSORFLOW_DISTRIBUTIONS = (
    "tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tensorflow-macos",
    "tensorflow-aarch64", "tensorflow-cpu-aws", "intel-tensorflow", "tf-nightly", "tf-nightly-cpu",
    "tf-nightly-gpu",
)  # fmt: skip
INSTALL_HINT = (
    'pip install "kopt-keras[cpu]" for the CPU build, "kopt-keras[and-cuda]" for NVIDIA GPUs, '
    "or install the TensorFlow your machine needs (a TPU VM's, your own) with pip first"
)


def installed_tensorflow():
    """``{distribution name: version}`` of every installed TensorFlow distribution.

    Example:

    >>> sorted(installed_tensorflow())  # doctest: +SKIP
    ['tensorflow-cpu']
    """
    found = {}
    for distribution in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", (distribution.metadata["Name"] or "")).lower()
        if name in TENSORFLOW_DISTRIBUTIONS:
            found[name] = distribution.version
    return found


def check_tensorflow(installed=None):
    """Raises ImportError when no usable TensorFlow is installed; warns on two.

    Args:
        installed: ``{distribution: version}`` to check instead of the environment's
            (for tests); ``None`` reads :func:`installed_tensorflow`.

    Returns:
        The ``{distribution: version}`` that was checked. It is empty for a
        TensorFlow built from source without package metadata, whose version is
        then not checked.

    Raises:
        ImportError: no ``tensorflow`` package can be imported, or an installed
            distribution is older than ``MIN_TENSORFLOW``; the message names the
            distribution, its version and the way to install a usable one.

    Example:

    >>> check_tensorflow({"tensorflow": "2.21.0"})
    {'tensorflow': '2.21.0'}
    >>> check_tensorflow({"tensorflow-cpu": "2.15.1"})
    Traceback (most recent call last):
    ...
    ImportError: kopt needs TensorFlow 2.19 or newer. Installed: tensorflow-cpu 2.15.1. ...
    """
    if installed is None:
        if importlib.util.find_spec("tensorflow") is None:
            raise ImportError(f"kopt needs TensorFlow, and none is installed. {INSTALL_HINT}.")
        installed = installed_tensorflow()
    floor = ".".join(map(str, MIN_TENSORFLOW))
    described = ", ".join(f"{name} {version}" for name, version in sorted(installed.items()))
    for name, version in sorted(installed.items()):
        release = _release(version)
        if release is not None and release < MIN_TENSORFLOW:
            raise ImportError(
                f"kopt needs TensorFlow {floor} or newer. Installed: {described}. "
                f"Upgrade it (pip install --upgrade {name}) or {INSTALL_HINT}."
            )
    if len(installed) > 1:
        warnings.warn(
            f"Several TensorFlow distributions are installed ({described}). They write the same "
            "'tensorflow' package, so the one installed last is the one that runs. Uninstall all "
            "but one (pip uninstall ...) and reinstall it.",
            stacklevel=2,
        )
    newest = max((_release(version) or (0, 0) for version in installed.values()), default=(0, 0))
    if newest > NEWEST_TESTED:
        warnings.warn(
            f"kopt was tested with TensorFlow {floor} to {'.'.join(map(str, NEWEST_TESTED))}; "
            f"installed: {described}. Report any failure with that version.",
            stacklevel=2,
        )
    return installed


def _release(version):
    """``(major, minor)`` of a version string such as '2.21.0' or '2.22.0.dev20260101'."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None
