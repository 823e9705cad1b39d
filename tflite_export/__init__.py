"""tflite_export: convert Keras models to TFLite/LiteRT files and check them.

``convert`` writes a ``.tflite`` file atomically in one of several modes; ``verify``,
``predict`` and ``accuracy`` run it in the LiteRT interpreter; ``file_sizes`` gives
raw and gzipped sizes.
"""

from tflite_export.converter import MODES
from tflite_export.converter import ConversionError
from tflite_export.converter import convert
from tflite_export.sizes import file_sizes
from tflite_export.verify import accuracy
from tflite_export.verify import predict
from tflite_export.verify import verify

__all__ = ["MODES", "ConversionError", "accuracy", "convert", "file_sizes", "predict", "verify"]
