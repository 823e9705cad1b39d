"""Benchmark scripts that measure kopt (and its counterparts) and write BENCHMARKS.md.

Run each as a module from the repository root, e.g. ``python -m benchmarks.pruning``.
Nothing in ``kopt`` imports this package.
"""

__all__ = []
