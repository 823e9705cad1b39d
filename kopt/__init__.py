"""kopt: model optimization for Keras 3 on TensorFlow.

Subpackages: ``kopt.data`` (datasets), ``kopt.models`` (built-in models),
``kopt.pipeline`` (the recipe and stages behind ``kopt-optimize``), ``kopt.pruning``
(magnitude, block, M:N and structured pruning) and
``kopt.testing`` (the test harness for kopt layers and schedules).

Subpackages load on first use, so ``import kopt`` stays cheap and imports neither
TensorFlow nor anything else until a subpackage is touched.
"""

import importlib

from kopt.errors import ConfigError
from kopt.version import __version__

_SUBPACKAGES = ("data", "models", "pipeline", "pruning", "quantization", "testing")

__all__ = ["ConfigError", "__version__", *_SUBPACKAGES]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"kopt.{name}")
    raise AttributeError(f"module 'kopt' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
