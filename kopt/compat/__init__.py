"""Compatibility namespaces for code written against other libraries.

``import kopt.compat.tfmot as tfmot`` gives tensorflow-model-optimization's
namespace (``tfmot.sparsity.keras``, ``tfmot.quantization.keras``,
``tfmot.clustering.keras``, ``tfmot.experimental.combine``) backed by kopt, so a
tfmot script ports by changing its import line (:mod:`kopt.compat.tfmot`).
"""

__all__ = ["tfmot"]


def __getattr__(name):
    if name == "tfmot":
        import importlib

        return importlib.import_module("kopt.compat.tfmot")
    raise AttributeError(f"module 'kopt.compat' has no attribute {name!r}")
