"""Command-line help: moved to :mod:`tflite_export.cli_help`; this name stays for kopt's modules."""

from tflite_export.cli_help import format_help
from tflite_export.cli_help import package_flags as kopt_flags
from tflite_export.cli_help import wants_help
from tflite_export.cli_help import wants_version

__all__ = ["format_help", "kopt_flags", "wants_help", "wants_version"]
