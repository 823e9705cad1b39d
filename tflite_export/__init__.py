"""tflite_export: convert Keras models to TFLite/LiteRT files and check them.

``convert`` writes a ``.tflite`` file atomically in one of several modes; ``verify``,
``predict`` and ``accuracy`` run it in the LiteRT interpreter; ``file_sizes`` gives
raw and gzipped sizes. ``inspect`` reads the file without running it (operators,
tensor dtypes and quantization, constant sparsity, parameter count, size),
``format_inspection`` prints that as a table, and ``is_fully_integer`` says which
operators, if any, still compute in float. ``benchmark`` times the interpreter
with and without the XNNPACK delegate; ``format_benchmark`` prints the result.

``tflite_export.inspect`` and ``tflite_export.benchmark`` are these functions, not
the modules of the same name; import from the modules with
``from tflite_export.inspect import ...``.
"""

from tflite_export.benchmark import benchmark
from tflite_export.benchmark import format_benchmark
from tflite_export.converter import MODES
from tflite_export.converter import ConversionError
from tflite_export.converter import convert
from tflite_export.inspect import format_inspection
from tflite_export.inspect import inspect
from tflite_export.inspect import is_fully_integer
from tflite_export.sizes import file_sizes
from tflite_export.verify import accuracy
from tflite_export.verify import predict
from tflite_export.verify import verify

__all__ = [
    "MODES",
    "ConversionError",
    "accuracy",
    "benchmark",
    "convert",
    "file_sizes",
    "format_benchmark",
    "format_inspection",
    "inspect",
    "is_fully_integer",
    "predict",
    "verify",
]
