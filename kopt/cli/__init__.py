"""Command-line binaries; ``kopt-optimize`` is :mod:`kopt.cli.optimize`."""

__all__ = []
