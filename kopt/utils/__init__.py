"""Helpers shared across kopt: reading model graphs (model_graph), wrapper substitution; atomic writes (from tflite_export.atomic)."""

from tflite_export.atomic import atomic_output_path
from tflite_export.atomic import atomic_write_bytes
from tflite_export.atomic import atomic_write_json

__all__ = ["atomic_output_path", "atomic_write_bytes", "atomic_write_json"]
