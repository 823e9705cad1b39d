"""Entry point of ``python -m tflite_export``; see :mod:`tflite_export.cli`."""

import os

if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tflite_export import cli

    cli.main()
