"""tflite_export: convert Keras models to TFLite/LiteRT files and check them.

``convert`` writes a ``.tflite`` file atomically in one of several modes; ``verify``,
``predict`` and ``accuracy`` run it in the LiteRT interpreter; ``file_sizes`` gives
raw and gzipped sizes. ``inspect`` reads the file without running it (operators,
tensor dtypes and quantization, constant sparsity, parameter count, size),
``format_inspection`` prints that as a table, and ``is_fully_integer`` says which
operators, if any, still compute in float. ``benchmark`` times the interpreter
with and without the XNNPACK delegate; ``format_benchmark`` prints the result;
``interleaved_latency`` times several files in turns, so that they compare fairly;
``refuse_amx`` keeps XNNPACK's int8 kernels off Intel AMX, which makes small
int8 networks slower than float on AMX Xeons (``amx_state`` says where it applies;
``cpu_flags`` lists the CPU's vector extensions);
``layer_latencies`` times each convolution, dense and recurrent layer of a Keras model
alone, and ``fixed_latencies`` the part of a recurrent layer's time that does not
shrink with its units.
``compare`` measures a float and an optimized file of one model side by side
(``format_comparison``, ``write_comparison`` for JSON and PNG), and
``python -m tflite_export MODEL.keras OUT.tflite --mode=int8`` does all of it
from the command line. ``write_c_source`` writes the file as an aligned C array
for TFLite Micro firmware, and ``estimate_arena`` the tensor arena it needs. ``quantization_error`` reports
where full-integer PTQ of a float model loses precision, tensor by tensor.

``tflite_export.inspect``, ``.benchmark``, ``.verify`` and ``.quantization_error`` are
these functions, not the modules of the same name; import from the modules with
``from tflite_export.inspect import ...``. Every name loads on first use: ``import
tflite_export`` imports no TensorFlow (it only checks that one is installed,
:mod:`tflite_export.tensorflow_check`).
"""

import importlib
import importlib.util
import sys
import types

from tflite_export import tensorflow_check

tensorflow_check.check_tensorflow()

# Public name -> the module that defines it. They load on first use, so that
# ``import tflite_export`` and ``python -m tflite_export --help`` import no TensorFlow.
_LAZY = {
    "MODES": "converter",
    "ConversionError": "converter",
    "accuracy": "verify",
    "amx_state": "amx",
    "benchmark": "benchmark",
    "compare": "report",
    "convert": "converter",
    "cpu_flags": "cpu",
    "estimate_arena": "arena",
    "file_sizes": "sizes",
    "format_benchmark": "benchmark",
    "format_comparison": "report",
    "format_inspection": "inspect",
    "format_quantization_error": "quantization_error",
    "inspect": "inspect",
    "int8_grid_weights": "grid_weights",
    "interleaved_latency": "interleaved",
    "is_fully_integer": "inspect",
    "fixed_latencies": "layer_latency",
    "layer_latencies": "layer_latency",
    "predict": "verify",
    "quantize_dynamic_range": "ptq",
    "quantize_float16": "ptq",
    "quantize_full_integer": "ptq",
    "quantize_int16x8": "ptq",
    "quantization_error": "quantization_error",
    "refuse_amx": "amx",
    "sparse_inference_check": "sparse_inference",
    "verify": "verify",
    "write_c_source": "c_source",
    "write_comparison": "report",
    "xnnpack_sparse_cpu": "sparse_inference",
}

# Four functions share their module's name (benchmark, inspect, quantization_error,
# verify). Importing a submodule binds it on the package under that name, which would
# hide the function; _Package (below) binds the function instead, so
# ``tflite_export.verify`` is always the function, loaded or not.
_SHADOWED = frozenset(name for name, module in _LAZY.items() if name == module)


__all__ = [
    "MODES",
    "ConversionError",
    "accuracy",
    "amx_state",
    "benchmark",
    "compare",
    "convert",
    "cpu_flags",
    "estimate_arena",
    "file_sizes",
    "fixed_latencies",
    "format_benchmark",
    "format_comparison",
    "format_inspection",
    "format_quantization_error",
    "inspect",
    "int8_grid_weights",
    "interleaved_latency",
    "is_fully_integer",
    "layer_latencies",
    "predict",
    "quantize_dynamic_range",
    "quantize_float16",
    "quantize_full_integer",
    "quantize_int16x8",
    "quantization_error",
    "refuse_amx",
    "sparse_inference_check",
    "verify",
    "write_c_source",
    "write_comparison",
    "xnnpack_sparse_cpu",
]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        # A submodule used as an attribute (tflite_export.converter.MODES) loads as well.
        if importlib.util.find_spec(f"tflite_export.{name}") is not None:
            return importlib.import_module(f"tflite_export.{name}")
        raise AttributeError(f"module 'tflite_export' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tflite_export.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
