"""Entry point of ``python -m tflite_export``; see :mod:`tflite_export.cli`."""

import sys

if __name__ == "__main__":
    from tflite_export import native_logs

    if not native_logs.wants_verbose(sys.argv):
        native_logs.hide_native_noise()  # before TensorFlow is imported
    from tflite_export import cli

    cli.main()
