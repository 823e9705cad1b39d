"""Atomic file writes: moved to :mod:`tflite_export.atomic`; this name stays for kopt's modules."""

from tflite_export.atomic import atomic_output_path
from tflite_export.atomic import atomic_write_bytes
from tflite_export.atomic import atomic_write_json
from tflite_export.atomic import remove_stale_temporaries

__all__ = ["atomic_output_path", "atomic_write_bytes", "atomic_write_json", "remove_stale_temporaries"]
