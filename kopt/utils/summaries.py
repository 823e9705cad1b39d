"""TensorBoard scalars written with TensorFlow alone, for the pruning and clustering summary callbacks.

``tf.summary.scalar`` lives in the ``tensorboard`` package, which a training
machine may lack; :func:`write_scalar` writes the same event with TensorFlow
only, and TensorBoard reads it as a scalar. :func:`training_step` is the step
both callbacks log against: the optimizer's iteration count, or the batches the
callback has seen where the model has no optimizer.

Example:

>>> import os, tempfile, tensorflow as tf
>>> folder = tempfile.mkdtemp()
>>> with tf.summary.create_file_writer(folder).as_default():
...     write_scalar("layer/sparsity", 0.5, step=3)
>>> any(name.startswith("events.out.tfevents") for name in os.listdir(folder))
True
"""

from typing import Any

import keras
import tensorflow as tf

__all__ = ["training_step", "write_scalar"]


def write_scalar(tag: str, value: float, step: int) -> None:
    """Writes one scalar event to the default summary writer."""
    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    metadata.data_class = 1  # DATA_CLASS_SCALAR
    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=metadata)


def training_step(model: Any, batches_seen: int) -> int:
    """The optimizer's iteration count of ``model``, or ``batches_seen`` where it has no optimizer."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        return int(keras.ops.convert_to_numpy(optimizer.iterations))
    return batches_seen
