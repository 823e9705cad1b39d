"""Optional dependencies: import them where a feature needs them, or say which extra to install.

kopt's core needs TensorFlow, Keras, absl-py, ai-edge-litert, NumPy, PyYAML and
matplotlib. Two features need more and name the extra of the ``kopt-keras``
distribution that brings it:

=======================  ===============================  ==========================
module                   feature                          install
=======================  ===============================  ==========================
``tensorflow_datasets``  ``--dataset=mnist`` and other     ``kopt-keras[datasets]``
                         TensorFlow Datasets sources
``keras_tuner``          hyperparameter search            ``kopt-keras[tune]``
                         (``--tune``, ``search:``)
=======================  ===============================  ==========================

``kopt-keras[all]`` installs both.
"""

import importlib

__all__ = ["EXTRAS", "MissingExtraError", "require"]

# module -> (extra, distribution on the package index)
EXTRAS = {"keras_tuner": ("tune", "keras-tuner"), "tensorflow_datasets": ("datasets", "tensorflow-datasets")}


class MissingExtraError(ImportError):
    """An optional dependency that a requested feature needs is not installed."""


def require(module, feature):
    """Imports ``module`` for ``feature``, or raises MissingExtraError naming the extra.

    Args:
        module: A key of ``EXTRAS``.
        feature: What the user asked for, as they spelled it (``"--dataset=mnist"``).

    Raises:
        MissingExtraError: ``module`` is not installed; the message names the
            feature, the missing distribution and the ``pip install`` line.
        ValueError: ``module`` is not one of kopt's optional dependencies.

    Example:

    >>> require("keras_tuner", "hyperparameter search").__name__
    'keras_tuner'
    >>> require("numpy", "arrays")
    Traceback (most recent call last):
    ...
    ValueError: module must be one of ['keras_tuner', 'tensorflow_datasets']. Received: module='numpy'
    """
    if module not in EXTRAS:
        raise ValueError(f"module must be one of {sorted(EXTRAS)}. Received: module={module!r}")
    extra, distribution = EXTRAS[module]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:  # the package is there but one of its own dependencies is not
            raise
        raise MissingExtraError(
            f"{feature} needs {distribution}, which is not installed. "
            f'Install it with: pip install "kopt-keras[{extra}]"'
        ) from err
