"""The benchmarks' data: an MNIST-layout ``.npz`` archive (``../shared/data``)."""

import numpy as np

__all__ = ["data_summary", "load_arrays"]


def load_arrays(path, max_train_examples=None):
    """The archive as float32 images in [0, 1] ``(N, 28, 28)`` and int32 labels.

    Args:
        path: The ``.npz`` archive with ``x_train``, ``y_train``, ``x_test``, ``y_test``.
        max_train_examples: Keep only the first this many training examples (all if falsy).

    Returns:
        ``(x_train, y_train, x_test, y_test)``.
    """
    with np.load(path, allow_pickle=False) as archive:
        x_train, y_train = archive["x_train"], archive["y_train"]
        x_test, y_test = archive["x_test"], archive["y_test"]
    if max_train_examples:
        x_train, y_train = x_train[:max_train_examples], y_train[:max_train_examples]
    # As tfmot's examples do: pixels scaled to [0, 1]; labels as class indices.
    return (
        (x_train / 255.0).astype(np.float32),
        y_train.astype(np.int32),
        (x_test / 255.0).astype(np.float32),
        y_test.astype(np.int32),
    )


def data_summary(path, max_train_examples=None):
    """'N of M training images used, K test images' for ``max_train_examples``."""
    with np.load(path, allow_pickle=False) as archive:
        train, test = len(archive["y_train"]), len(archive["y_test"])
    used = train if max_train_examples is None else min(train, max_train_examples)
    return f"{used:,} of {train:,} training images used, {test:,} test images"
