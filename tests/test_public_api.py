"""The public surface: every exported name exists and is documented; imports are clean."""

import importlib
import inspect
import subprocess
import sys

import pytest

PACKAGES = [
    "kopt",
    "kopt.auto",
    "kopt.cli",
    "kopt.clustering",
    "kopt.compat",
    "kopt.compat.tfmot",
    "kopt.data",
    "kopt.distillation",
    "kopt.distribute",
    "kopt.models",
    "kopt.pipeline",
    "kopt.pipeline.stages",
    "kopt.pruning",
    "kopt.pruning.schedules",
    "kopt.quantization",
    "kopt.testing",
    "kopt.training",
    "kopt.transfer",
    "kopt.utils",
    "tflite_export",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_exists_and_is_documented(package):
    module = importlib.import_module(package)
    assert module.__doc__, f"{package} has no module docstring"
    assert isinstance(module.__all__, list)
    for name in module.__all__:
        obj = getattr(module, name)  # raises if a name is declared but missing
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj):
            assert inspect.getdoc(obj), f"{package}.{name} has no docstring"


def test_import_kopt_sets_no_environment_and_no_legacy_keras():
    code = (
        "import os, sys\n"
        "before = dict(os.environ)\n"
        "import kopt, kopt.data, kopt.models, kopt.pipeline, kopt.testing, tflite_export\n"
        "import kopt.cli.optimize\n"
        "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())\n"
        "bad = [m for m in sys.modules if m.startswith(('tensorflow_model_optimization', 'tf_keras'))]\n"
        "assert not bad, bad\n"
        "print('clean')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "clean" in result.stdout, result.stderr[-2000:]


def test_import_kopt_alone_does_not_import_tensorflow():
    code = "import sys, kopt; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr[-2000:]
