"""Small helpers shared across kopt: atomic file writes."""

from kopt.utils.atomic import atomic_output_path
from kopt.utils.atomic import atomic_write_bytes
from kopt.utils.atomic import atomic_write_json

__all__ = ["atomic_output_path", "atomic_write_bytes", "atomic_write_json"]
