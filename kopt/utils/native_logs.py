"""Native log filtering: moved to :mod:`tflite_export.native_logs`; this name stays for kopt's modules."""

from tflite_export.native_logs import NOISE
from tflite_export.native_logs import hide_native_noise
from tflite_export.native_logs import is_noise
from tflite_export.native_logs import wants_verbose

__all__ = ["NOISE", "hide_native_noise", "is_noise", "wants_verbose"]
