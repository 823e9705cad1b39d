"""Checks on images and labels before a model ever sees them.

Bad data does not fail loudly on its own: one NaN pixel trains a NaN model (or,
in the test split only, reports a good model at chance accuracy); one label of
1000 among digits trains a 1001-class model; a label of ``2**32 + 3`` turns into
class 3 when cast to 32 bits. These checks refuse all of that with a
:class:`kopt.ConfigError` naming the dataset, the array and the offending entry.

Example:

>>> import numpy as np
>>> check_labels("npz:x.npz", np.array([0, 1, 1]), np.array([1, 0]))
2
>>> check_labels("npz:x.npz", np.array([0, 1, 1000]), np.array([1]))
Traceback (most recent call last):
...
kopt.errors.ConfigError: dataset=npz:x.npz: labels run up to 1000, which means 1001 classes, but 998 of them \
have no training example (the first is 2); fix the labels, or state the class count with --num_classes
"""

import numpy as np

from kopt.errors import ConfigError

__all__ = ["MAX_CLASSES", "check_finite_images", "check_labels"]

# More classes than this is a mistake in the labels, not a classifier kopt trains.
MAX_CLASSES = 100_000
# Images checked at a time, so a big float dataset needs no second full-size copy.
_CHUNK = 4096


def check_finite_images(dataset, key, images):
    """Raises :class:`kopt.ConfigError` if ``images`` holds a NaN or an infinity.

    Args:
        dataset: The dataset name, for the message.
        key: The array's name, e.g. ``"x_test"``.
        images: A ``(N, ...)`` array; integer arrays pass without a scan.
    """
    if not np.issubdtype(images.dtype, np.floating):
        return
    bad_images = []
    bad_values = 0
    for start in range(0, len(images), _CHUNK):
        finite = np.isfinite(images[start : start + _CHUNK])
        per_image = (~finite).reshape(len(finite), -1).sum(axis=1)
        bad_values += int(per_image.sum())
        bad_images.extend((start + np.flatnonzero(per_image)).tolist()[: 5 - len(bad_images)])
    if bad_values:
        raise ConfigError(
            "dataset",
            dataset,
            f"{key} holds {bad_values} NaN or infinite pixel values (images {bad_images}"
            f"{' ...' if bad_values > len(bad_images) else ''}); a model trained or scored on them is meaningless, "
            "so clean or drop those images",
        )


def check_labels(dataset, y_train, y_test, num_classes=None):
    """Returns the class count after checking both label arrays against it.

    Labels must be integer class indices in ``[0, num_classes)``. Without a
    stated ``num_classes`` the count is the largest label plus one, and every
    class below it must have a training example (else the labels are wrong, or
    the count should be stated). Training needs at least two classes.

    Args:
        dataset: The dataset name, for the message.
        y_train: 1-D integer array of training labels (any integer width).
        y_test: 1-D integer array of test labels.
        num_classes: The stated class count, or ``None`` to infer it.

    Raises:
        ConfigError: Keyed ``dataset`` (or ``num_classes``), naming the label.
    """
    for key, labels in (("y_train", y_train), ("y_test", y_test)):
        if len(labels) and labels.min() < 0:
            index = int(np.argmin(labels))
            raise ConfigError("dataset", dataset, f"{key}[{index}] is {labels[index]}; labels are class indices from 0")
    present = np.unique(y_train)
    if len(present) < 2:
        only = f"is {present[0]}" if len(present) else "is missing"
        raise ConfigError("dataset", dataset, f"every training label {only}; a classifier needs at least 2 classes")
    largest = max(int(y_train.max()), int(y_test.max()) if len(y_test) else 0)
    if num_classes is not None:
        for key, labels in (("y_train", y_train), ("y_test", y_test)):
            if len(labels) and int(labels.max()) >= num_classes:
                index = int(np.argmax(labels))
                raise ConfigError(
                    "num_classes",
                    num_classes,
                    f"{dataset}: {key}[{index}] is {labels[index]}, outside the classes 0..{num_classes - 1}",
                )
        return num_classes
    if largest + 1 > MAX_CLASSES:
        index = int(np.argmax(y_train)) if int(y_train.max()) == largest else int(np.argmax(y_test))
        key = "y_train" if int(y_train.max()) == largest else "y_test"
        raise ConfigError(
            "dataset",
            dataset,
            f"{key}[{index}] is {largest}, which would mean {largest + 1} classes (at most {MAX_CLASSES}); "
            "fix the labels",
        )
    missing = largest + 1 - len(present)
    if missing:
        first = int(np.setdiff1d(np.arange(largest + 1), present)[0])
        raise ConfigError(
            "dataset",
            dataset,
            f"labels run up to {largest}, which means {largest + 1} classes, but {missing} of them have no "
            f"training example (the first is {first}); fix the labels, or state the class count with --num_classes",
        )
    return largest + 1
