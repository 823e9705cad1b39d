"""Teacher logits computed once, so a large teacher does not run every epoch.

A :class:`kopt.distillation.Distiller` accepts targets
``{"labels": y, "teacher_logits": t}``; with them it skips the teacher in its
training step. Two helpers build such targets: :func:`teacher_logits` for
arrays and :func:`with_teacher_logits` for a ``tf.data`` pipeline.

Cached logits are those of the un-augmented inputs: with random augmentation
the teacher should see the same augmented batch as the student, so run it live.
"""

import keras
import numpy as np
import tensorflow as tf

from kopt.distillation.distiller import LABELS
from kopt.distillation.distiller import TEACHER_LOGITS

__all__ = ["teacher_logits", "with_teacher_logits"]


def teacher_logits(teacher: keras.Model, x: np.ndarray | tf.Tensor, *, batch_size: int = 256) -> np.ndarray:
    """Runs ``teacher`` once over ``x`` in inference mode and returns its logits.

    Args:
        teacher: A ``keras.Model`` that outputs logits.
        x: Inputs (array or tensor) of the whole training set, in order.
        batch_size: Examples per teacher call.

    Returns:
        A float32 NumPy array ``(len(x), classes)``. Fit a Distiller with
        ``y={"labels": y, "teacher_logits": logits}``; Keras shuffles both together.

    Raises:
        ValueError: If ``teacher`` is not a model or ``batch_size`` is not positive.

    Example:

    >>> import keras, numpy as np
    >>> teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> teacher_logits(teacher, np.ones((10, 4))).shape
    (10, 3)
    """
    _check(teacher, batch_size)
    return np.asarray(teacher.predict(x, batch_size=batch_size, verbose=0), dtype="float32")


def with_teacher_logits(dataset: tf.data.Dataset, teacher: keras.Model) -> tf.data.Dataset:
    """Reads an ``(x, y)`` dataset once, running ``teacher`` on each batch.

    The result holds every example in memory, so later epochs read the logits
    instead of running the teacher. Batch and shuffle it after, e.g.
    ``with_teacher_logits(data, teacher).shuffle(n).batch(64)``.

    Args:
        dataset: A finite, batched ``tf.data.Dataset`` of ``(x, y)`` pairs.
        teacher: A ``keras.Model`` that outputs logits.

    Returns:
        An unbatched ``tf.data.Dataset`` of ``(x, {"labels": y, "teacher_logits": t})``.

    Raises:
        ValueError: If ``dataset`` is not a finite dataset of ``(x, y)`` pairs.

    Example:

    >>> import keras, numpy as np, tensorflow as tf
    >>> teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> data = tf.data.Dataset.from_tensor_slices((np.ones((6, 4), "float32"), np.zeros(6))).batch(4)
    >>> x, y = next(iter(with_teacher_logits(data, teacher)))
    >>> tuple(y["teacher_logits"].shape)
    (3,)
    """
    _check(teacher, 1)
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(f"`dataset` must be a tf.data.Dataset. Received: dataset={dataset!r}")
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError(f"`dataset` must be finite (drop .repeat()). Received: dataset={dataset!r}")
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(f"`dataset` must yield (x, y) pairs. Received: element_spec={spec!r}")
    inputs, labels, logits = [], [], []
    for x, y in dataset:
        inputs.append(keras.ops.convert_to_numpy(x))
        labels.append(keras.ops.convert_to_numpy(y))
        logits.append(keras.ops.convert_to_numpy(teacher(x, training=False)))
    targets = {LABELS: np.concatenate(labels), TEACHER_LOGITS: np.concatenate(logits).astype("float32")}
    return tf.data.Dataset.from_tensor_slices((np.concatenate(inputs), targets))


def _check(teacher, batch_size):
    if not isinstance(teacher, keras.Model):
        raise ValueError(f"`teacher` must be a keras.Model. Received: teacher={teacher!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
