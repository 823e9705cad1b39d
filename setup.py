"""Build file for kopt: model optimization for Keras 3 on TensorFlow.

``pip install .`` installs the CPU build of TensorFlow (``tensorflow-cpu``), which is
what the 2-core test and CI machines want. For a GPU machine, set
``KOPT_TENSORFLOW=tensorflow`` when installing, and add the ``gpu`` extra::

    KOPT_TENSORFLOW=tensorflow pip install ".[gpu]"
"""

import os
import pathlib

import setuptools

_ROOT = pathlib.Path(__file__).parent
_TF_VERSION = "~=2.21.0"


def _version():
    namespace = {}
    exec((_ROOT / "kopt" / "version.py").read_text(), namespace)
    return namespace["__version__"]


def _tensorflow_requirement():
    # The two wheels ship the same `tensorflow` package and must never both be
    # installed, so exactly one of them is named here.
    wheel = os.environ.get("KOPT_TENSORFLOW", "tensorflow-cpu")
    if wheel not in ("tensorflow", "tensorflow-cpu"):
        raise SystemExit(
            "KOPT_TENSORFLOW must be 'tensorflow' or 'tensorflow-cpu'. "
            f"Received: KOPT_TENSORFLOW={wheel!r}"
        )
    return wheel + _TF_VERSION


setuptools.setup(
    name="kopt",
    version=_version(),
    description=(
        "Pruning, quantization, clustering, distillation and TFLite export "
        "for Keras 3 on TensorFlow."
    ),
    long_description=(_ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["kopt", "kopt.*", "tflite_export", "tflite_export.*"]),
    install_requires=[
        _tensorflow_requirement(),
        "keras>=3.12",
        "tensorflow-datasets>=4.9",
        "absl-py>=2.1",
        "ai-edge-litert>=1.2",
        "keras-tuner>=1.4.7",
        "pyyaml>=6.0",
        "scikit-learn>=1.3",
        "matplotlib>=3.8",
        "numpy>=1.26",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5"],
        "gpu": ["tensorflow[and-cuda]" + _TF_VERSION],
    },
    entry_points={
        "console_scripts": [
            "kopt-optimize=kopt.cli.entry:main",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
