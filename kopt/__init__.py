"""kopt: model optimization for Keras 3 on TensorFlow.

Subpackages: ``kopt.pruning`` (magnitude, block, M:N and structured pruning),
``kopt.quantization`` (QAT and post-training quantization), ``kopt.clustering``
(weight clustering), ``kopt.distillation`` (the ``Distiller`` model),
``kopt.auto`` (accuracy-aware compression), ``kopt.compat`` (``kopt.compat.tfmot``:
tfmot's namespace for a one-line port), ``kopt.distribute`` (``tf.distribute``
strategies), ``kopt.training`` (optimizers, schedules, precision), ``kopt.data``
(datasets), ``kopt.models`` (built-in models), ``kopt.transfer`` (weight transfer
and Net2Net widening and deepening), ``kopt.pipeline`` (the recipe and
stages behind ``kopt-optimize``), ``kopt.cli`` (the command-line programs),
``kopt.utils`` and ``kopt.testing`` (the test harness for kopt layers and schedules).

``import kopt`` first checks, without importing it, that a TensorFlow of a
supported version is installed, and raises an ImportError that says how to install
one if not (:mod:`tflite_export.tensorflow_check`). Subpackages load on first use (``kopt.clustering.cluster_weights`` works after a
plain ``import kopt``), so ``import kopt`` stays cheap and imports no TensorFlow.
Once Keras is imported, kopt registers its saved classes with it
(:mod:`kopt.registration`), so ``keras.models.load_model`` reads kopt's models
with no ``custom_objects``.
"""

import importlib

import tflite_export  # noqa: F401  (its import checks the installed TensorFlow: tflite_export.tensorflow_check)
from kopt import registration
from kopt.errors import ConfigError
from kopt.version import __version__

_SUBPACKAGES = (
    "auto", "cli", "clustering", "compat", "data", "distillation", "distribute", "models", "pipeline", "pruning",
    "quantization", "testing", "training", "transfer", "utils",
)  # fmt: skip
registration.register_when_keras_loads()

__all__ = ["ConfigError", "__version__", *_SUBPACKAGES]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"kopt.{name}")
    raise AttributeError(f"module 'kopt' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
