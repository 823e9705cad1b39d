"""The UCI handwritten digits, embedded in kopt so the default run needs nothing else.

``digits.npz`` beside this module holds the 1,797 grey 8x8 images of the UCI
"Optical Recognition of Handwritten Digits" data set (Alpaydin and Kaynak, 1998;
CC BY 4.0), as scikit-learn also ships them, already split 80/20 and stratified
by class (1,437 training and 360 test images). The split was drawn once with
scikit-learn 1.9.1, ``train_test_split(images, labels, test_size=0.2,
stratify=labels, random_state=20151)``, and stored, so every installation trains
on the same examples without scikit-learn; ``tests/data/test_digits.py`` checks
the file against scikit-learn where it is installed.

Each pixel is a count from 0 to 16: how many pixels of the original 32x32 bitmap's
4x4 block were set.
"""

import os

import numpy as np

__all__ = ["DIGITS_SOURCE", "MAX_COUNT", "digits_arrays"]

MAX_COUNT = 16
DIGITS_SOURCE = "UCI handwritten digits embedded in kopt (stratified 80/20 split)"
_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")


def digits_arrays():
    """Returns the embedded digits as ``(x_train, y_train, x_test, y_test)``.

    Images are ``float32`` in ``[0, 1]`` with a channel axis, shape ``(n, 8, 8, 1)``;
    labels are ``int32`` class indices 0-9.

    Raises:
        FileNotFoundError: the installation lacks ``digits.npz`` (a build that left
            out package data); the message names the file.

    Example:

    >>> x_train, y_train, x_test, y_test = digits_arrays()
    >>> x_train.shape, x_test.shape, float(x_train.max())
    ((1437, 8, 8, 1), (360, 8, 8, 1), 1.0)
    """
    if not os.path.isfile(_PATH):
        raise FileNotFoundError(
            f"kopt's embedded digits file is missing: {_PATH}. The installation is "
            "incomplete; reinstall kopt-keras (the wheel carries kopt/data/digits.npz)."
        )
    with np.load(_PATH, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    return (
        _images(arrays["x_train"]),
        arrays["y_train"].astype(np.int32),
        _images(arrays["x_test"]),
        arrays["y_test"].astype(np.int32),
    )


def _images(counts):
    return (counts.astype(np.float32) / MAX_COUNT)[..., np.newaxis]
