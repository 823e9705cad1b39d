"""tflite_export: convert Keras models to TFLite/LiteRT files and check them.

``convert`` writes a ``.tflite`` file atomically in one of several modes; ``verify``,
``predict`` and ``accuracy`` run it in the LiteRT interpreter; ``file_sizes`` gives
raw and gzipped sizes. ``inspect`` reads the file without running it (operators,
tensor dtypes and quantization, constant sparsity, parameter count, size),
``format_inspection`` prints that as a table, and ``is_fully_integer`` says which
operators, if any, still compute in float. ``benchmark`` times the interpreter
with and without the XNNPACK delegate; ``format_benchmark`` prints the result.
``compare`` measures a float and an optimized file of one model side by side
(``format_comparison``, ``write_comparison`` for JSON and PNG), and
``python -m tflite_export MODEL.keras OUT.tflite --mode=int8`` does all of it
from the command line. ``write_c_source`` writes the file as an aligned C array
for TFLite Micro firmware, and ``estimate_arena`` the tensor arena it needs. ``quantization_error`` reports
where full-integer PTQ of a float model loses precision, tensor by tensor.

``tflite_export.inspect`` and ``tflite_export.benchmark`` are these functions, not
the modules of the same name; import from the modules with
``from tflite_export.inspect import ...``.
"""

from tflite_export.arena import estimate_arena
from tflite_export.benchmark import benchmark
from tflite_export.benchmark import format_benchmark
from tflite_export.c_source import write_c_source
from tflite_export.converter import MODES
from tflite_export.converter import ConversionError
from tflite_export.converter import convert
from tflite_export.inspect import format_inspection
from tflite_export.inspect import inspect
from tflite_export.inspect import is_fully_integer
from tflite_export.quantization_error import format_quantization_error
from tflite_export.quantization_error import quantization_error
from tflite_export.report import compare
from tflite_export.report import format_comparison
from tflite_export.report import write_comparison
from tflite_export.sizes import file_sizes
from tflite_export.verify import accuracy
from tflite_export.verify import predict
from tflite_export.verify import verify

__all__ = [
    "MODES",
    "ConversionError",
    "accuracy",
    "benchmark",
    "compare",
    "convert",
    "estimate_arena",
    "file_sizes",
    "format_benchmark",
    "format_comparison",
    "format_inspection",
    "format_quantization_error",
    "inspect",
    "is_fully_integer",
    "predict",
    "quantization_error",
    "verify",
    "write_c_source",
    "write_comparison",
]
