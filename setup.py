"""Build shim for kopt-keras: the metadata lives in pyproject.toml.

Kept so that tools which still call ``python setup.py`` find the project. It only
refuses ``KOPT_TENSORFLOW``, which earlier versions read to choose the TensorFlow
wheel: that choice is now an extra (``pip install ".[cpu]"`` or ``".[and-cuda]"``),
and ignoring the variable silently would install a different build than asked.
"""

import os

import setuptools

if "KOPT_TENSORFLOW" in os.environ:
    raise SystemExit(
        "KOPT_TENSORFLOW is no longer read. Choose TensorFlow with an extra instead: "
        'pip install ".[cpu]" (CPU) or ".[and-cuda]" (NVIDIA GPU), or install your own '
        f"TensorFlow first and then pip install . Received: KOPT_TENSORFLOW={os.environ['KOPT_TENSORFLOW']!r}"
    )

setuptools.setup()
