"""A validation split carved from the training data, never from the test split."""

import numpy as np
import tensorflow as tf

from kopt.errors import ConfigError

__all__ = ["split_validation"]


def split_validation(train, fraction, *, batch_size, seed=0):
    """Splits a batched ``(images, labels)`` training dataset into train and validation.

    The dataset is read once, in the order its first pass gives (for kopt's
    datasets, a shuffle fixed by the loader's seed), and its last ``fraction``
    of examples become the validation set. Both parts are held in memory, so
    this suits datasets of the MNIST or CIFAR scale.

    Args:
        train: A batched ``tf.data.Dataset`` of ``(images, labels)``.
        fraction: Share of the examples to hold out, in (0, 1).
        batch_size: Batch size of both returned datasets.
        seed: Seed of the returned training set's reshuffling each epoch.

    Returns:
        ``(train, validation)``: the remaining examples, shuffled every epoch,
        and the held-out ones in a fixed order; both batched.

    Raises:
        ConfigError: For a fraction outside (0, 1), or one that leaves either
            part empty.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> data = tf.data.Dataset.from_tensor_slices((np.zeros((10, 2)), np.arange(10))).batch(4)
    >>> rest, held_out = split_validation(data, 0.2, batch_size=4)
    >>> [len(list(ds.unbatch())) for ds in (rest, held_out)]
    [8, 2]
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError("validation_split", fraction, "must be a fraction in (0, 1), e.g. 0.1")
    images, labels = [], []
    for batch_images, batch_labels in train:
        images.append(np.asarray(batch_images))
        labels.append(np.asarray(batch_labels))
    images, labels = np.concatenate(images), np.concatenate(labels)
    held_out = int(round(len(images) * fraction))
    if held_out < 1 or held_out >= len(images):
        raise ConfigError(
            "validation_split", fraction, f"leaves no examples on one side of {len(images)} training examples"
        )
    cut = len(images) - held_out
    rest = (
        tf.data.Dataset.from_tensor_slices((images[:cut], labels[:cut]))
        .shuffle(cut, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    validation = tf.data.Dataset.from_tensor_slices((images[cut:], labels[cut:])).batch(batch_size)
    return rest, validation.prefetch(tf.data.AUTOTUNE)
