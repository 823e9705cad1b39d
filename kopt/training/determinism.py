"""Reproducible runs: one seed for every generator, and TensorFlow's deterministic ops."""

import keras
import tensorflow as tf

from kopt.training.config import require_int

__all__ = ["make_reproducible"]


def make_reproducible(seed: int, *, deterministic: bool = True) -> None:
    """Seeds Python, NumPy, TensorFlow and Keras; optionally makes TensorFlow's ops deterministic.

    With the same seed, a run on the same machine and versions repeats exactly:
    the same weights, shuffles, dropout masks and, with ``deterministic``, the
    same floating-point reductions, so the same accuracies and ``.tflite`` bytes.

    ``deterministic=True`` calls ``tf.config.experimental.enable_op_determinism``,
    which lasts for the rest of the process (TensorFlow offers no way back). On
    a CPU it costs little; on a GPU some ops become slower, and the few without a
    deterministic kernel raise an error instead of running.

    Args:
        seed: An integer ``>= 0``.
        deterministic: Whether to turn on TensorFlow's op determinism.

    Raises:
        ConfigError: For a seed that is not an integer ``>= 0``.

    Example:

    >>> import numpy as np
    >>> make_reproducible(7, deterministic=False)
    >>> first = np.random.rand()
    >>> make_reproducible(7, deterministic=False)
    >>> first == np.random.rand()
    True
    """
    require_int("seed", seed, minimum=0)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
