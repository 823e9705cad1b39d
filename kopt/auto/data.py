"""Data for the accuracy-aware search: arrays in memory, and a validation split.

The search evaluates many candidate models, so it holds its (small) training and
validation sets as NumPy arrays: every candidate is scored on exactly the same
examples, and fine-tuning sees a seeded, reproducible order, which is what lets a
resumed run end with the same model as an uninterrupted one.

Example:

>>> import numpy as np
>>> x, y = np.zeros((10, 2), "float32"), np.arange(10)
>>> (x_fit, y_fit), (x_val, y_val) = split_validation((x, y), 0.2, seed=0)
>>> len(y_fit), len(y_val), sorted(set(y_fit) | set(y_val)) == list(range(10))
(8, 2, True)
"""

from collections.abc import Iterable
from typing import Any

import numpy as np

from kopt.training.validation import split_arrays

__all__ = ["as_arrays", "canonical_order", "split_validation"]


def as_arrays(
    data: tuple[np.ndarray, np.ndarray] | Iterable[tuple[Any, Any]], *, name: str = "data"
) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(images, labels)`` NumPy arrays from arrays or a batched dataset.

    Args:
        data: An ``(images, labels)`` pair of arrays, or an iterable of such
            batches (a batched ``tf.data.Dataset``).
        name: The argument's name, for errors.

    Returns:
        ``(images, labels)``: float32 images and int64 labels, one row each.

    Raises:
        ValueError: If ``data`` is neither, is empty, or the counts differ.
    """
    if isinstance(data, (tuple, list)) and len(data) == 2 and not _is_batch_list(data):
        images, labels = np.asarray(data[0]), np.asarray(data[1])
    else:
        try:
            batches = [(np.asarray(x), np.asarray(y)) for x, y in data]
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{name} must be (images, labels) arrays or a dataset of (images, labels) batches. "
                f"Received: {name} of type {type(data).__name__}"
            ) from err
        if not batches:
            raise ValueError(f"{name} holds no example. Received: an empty {name}")
        images = np.concatenate([x for x, _ in batches])
        labels = np.concatenate([y for _, y in batches])
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(
            f"{name} needs as many labels as images, at least one. "
            f"Received: {name} with {len(images)} images and {len(labels)} labels"
        )
    return images.astype(np.float32, copy=False), labels.astype(np.int64, copy=False)


def split_validation(
    data: tuple[np.ndarray, np.ndarray] | Iterable[tuple[Any, Any]], fraction: float, *, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Carves a validation split out of training data, at random but reproducibly.

    Args:
        data: Training data as :func:`as_arrays` accepts.
        fraction: Share of the examples held out, in ``(0, 1)``.
        seed: Fixes which examples are held out
            (:func:`kopt.training.split_arrays` makes the choice).

    Returns:
        ``((x_fit, y_fit), (x_val, y_val))``.

    Raises:
        kopt.ConfigError: (a ValueError) keyed ``fraction``, for a fraction outside
            ``(0, 1)`` or one leaving a split empty.
    """
    images, labels = as_arrays(data, name="data")
    return split_arrays(images, labels, fraction, seed=seed, key="fraction")


def canonical_order(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorts examples into an order that depends on their content only.

    A shuffled dataset yields its examples in a different order on each pass;
    sorted this way, the same examples always become the same arrays, so a split
    carved from them, and a search resumed on them, do not depend on the pass.
    Identical examples may swap places, which changes nothing.

    Returns:
        ``(images, labels)`` reordered.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    projection = np.random.default_rng(0).normal(size=int(np.prod(images.shape[1:]))).astype(np.float64)
    keys = images.reshape(len(images), -1).astype(np.float64) @ projection
    order = np.lexsort((labels, keys))
    return images[order], labels[order]


def _is_batch_list(data):
    # A list of two (images, labels) batches looks like a pair; arrays do not nest that way.
    return all(isinstance(item, (tuple, list)) and len(item) == 2 for item in data)
