"""Benchmark scripts that measure kopt (and its counterparts) and write BENCHMARKS.md.

Run each as a module from the repository root, e.g. ``python -m benchmarks.pruning``,
or all of them and their side-by-side summary with ``python -m benchmarks.run``.
Nothing in ``kopt`` imports this package.
"""

__all__ = []
