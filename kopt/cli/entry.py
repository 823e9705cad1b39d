"""Console-script entry point of ``kopt-optimize``.

Kept apart from :mod:`kopt.cli.optimize` so that TensorFlow's C++ start-up chatter
can be quieted before TensorFlow is imported, without ``import kopt`` ever touching
the environment. A value the user set is respected.
"""

import os


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kopt.cli import optimize

    optimize.run_app()
