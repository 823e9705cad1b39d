"""A validation split carved from the training data, never from the test split."""

import numpy as np
import tensorflow as tf

from kopt.errors import ConfigError

__all__ = ["split_arrays", "split_validation"]


def split_arrays(images, labels, fraction, *, seed=None, key="validation_split"):
    """Holds out ``fraction`` of the examples: the one validation split of kopt.

    Args:
        images: Array of examples (first axis).
        labels: Array of labels, as long as ``images``.
        fraction: Share of the examples to hold out, in (0, 1).
        seed: ``None`` holds out the last examples in the given order (data
            already shuffled, as a training dataset's first pass); an integer
            holds out a random choice fixed by it, both parts kept in the given order.
        key: The setting named in errors.

    Returns:
        ``((images, labels), (held-out images, held-out labels))``.

    Raises:
        ConfigError: Keyed ``key``, for a fraction outside (0, 1) or one that
            leaves either part empty.

    Example:

    >>> x, y = np.arange(10.0)[:, None], np.arange(10)
    >>> split_arrays(x, y, 0.2)[1][1], split_arrays(x, y, 0.2, seed=0)[1][1].shape
    (array([8, 9]), (2,))
    """
    _check_fraction(fraction, key)
    held_out = int(round(len(images) * fraction))
    if held_out < 1 or held_out >= len(images):
        raise ConfigError(key, fraction, f"leaves no examples on one side of {len(images)} training examples")
    if seed is None:
        keep, hold = np.arange(len(images) - held_out), np.arange(len(images) - held_out, len(images))
    else:
        order = np.random.default_rng(seed).permutation(len(images))
        keep, hold = np.sort(order[held_out:]), np.sort(order[:held_out])
    return (images[keep], labels[keep]), (images[hold], labels[hold])


def split_validation(
    train: tf.data.Dataset, fraction: float, *, batch_size: int, seed: int = 0
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
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
    _check_fraction(fraction, "validation_split")  # before reading the data
    images, labels = [], []
    for batch_images, batch_labels in train:
        images.append(np.asarray(batch_images))
        labels.append(np.asarray(batch_labels))
    (fit_images, fit_labels), (val_images, val_labels) = split_arrays(
        np.concatenate(images), np.concatenate(labels), fraction
    )
    cut = len(fit_images)
    rest = (
        tf.data.Dataset.from_tensor_slices((fit_images, fit_labels))
        .shuffle(cut, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    validation = tf.data.Dataset.from_tensor_slices((val_images, val_labels)).batch(batch_size)
    return rest, validation.prefetch(tf.data.AUTOTUNE)


def _check_fraction(fraction, key):
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction < 1:
        raise ConfigError(key, fraction, "must be a fraction in (0, 1), e.g. 0.1")
