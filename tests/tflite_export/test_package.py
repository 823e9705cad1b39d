"""Tests for tflite_export/__init__.py: lazy loading and the names shared with modules."""

import subprocess
import sys

import tflite_export


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_every_public_name_resolves_and_is_listed():
    assert sorted(tflite_export.__all__) == sorted(tflite_export._LAZY)
    for name in tflite_export.__all__:
        assert getattr(tflite_export, name) is not None, name


def test_names_shared_with_modules_stay_functions_after_the_modules_load():
    code = (
        "import tflite_export.verify, tflite_export.inspect, tflite_export.benchmark\n"
        "from tflite_export.quantization_error import format_quantization_error\n"
        "import tflite_export as t\n"
        "print(*[callable(getattr(t, n)) for n in ('verify', 'inspect', 'benchmark', 'quantization_error')])"
    )
    assert _run(code) == ["True"] * 4


def test_submodules_are_reachable_as_attributes():
    assert tflite_export.converter.MODES == tflite_export.MODES


def test_help_imports_no_tensorflow():
    code = (
        "import runpy, sys\n"
        "sys.argv = ['tflite_export', '--help']\n"
        "try:\n"
        "    runpy.run_module('tflite_export', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code, 'tensorflow' in sys.modules)"
    )
    assert _run(code)[-3:] == ["exit", "0", "False"]
