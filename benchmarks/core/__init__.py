"""What both sides of every benchmark share: data, training and timing, TFLite scoring.

These modules import only NumPy at module level, never kopt, Keras 3 or
tensorflow-model-optimization: kopt's side imports them as ``benchmarks.core``,
the tfmot workers (run inside ``benchmarks/.venv-tfmot`` with tf_keras, their
folder first on ``sys.path``) as ``core``. Code that needs Keras takes the Keras
module in use (``keras`` or ``tf_keras``) as an argument.
"""

__all__ = []
