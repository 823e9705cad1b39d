"""Console-script entry point of ``kopt-optimize``.

Kept apart from :mod:`kopt.cli.optimize` so that TensorFlow's native start-up
chatter can be hidden before TensorFlow is imported (:mod:`tflite_export.native_logs`),
without ``import kopt`` ever touching the environment. ``--verbosity=1`` shows
everything; a ``TF_CPP_MIN_LOG_LEVEL`` the user set is respected.
"""

import sys

from tflite_export import native_logs


def main():
    if not native_logs.wants_verbose(sys.argv):
        native_logs.hide_native_noise()
    from kopt.cli import optimize

    optimize.run_app()
