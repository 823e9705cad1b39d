"""The overlap of two arrays of the same rank: what a partial weight copy keeps.

When a source weight and a target weight have the same rank but different sizes
(a layer of 32 filters copied into one of 48), the part both hold is copied and
the rest of the target keeps its own values. On every axis ``i`` the overlap is
``min(source.shape[i], target.shape[i])`` long; it starts at index 0 of both,
except on *centred* axes (the spatial axes of a convolution kernel), where the
smaller array sits in the middle of the larger one, so a 3x3 kernel lands on the
centre taps of a 5x5 one::

    offset(larger, smaller) = (larger - smaller) // 2

Example:

>>> import numpy as np
>>> copy_overlap(np.ones((2, 3)), np.zeros((3, 2)))
array([[1., 1.],
       [1., 1.],
       [0., 0.]])
>>> copy_overlap(np.ones((1, 1)), np.zeros((3, 3)), centred_axes=(0, 1))[1]
array([0., 1., 0.])
"""

from collections.abc import Sequence

import numpy as np

__all__ = ["copy_overlap", "overlap_size", "overlap_slices"]


def overlap_slices(
    source_shape: Sequence[int], target_shape: Sequence[int], *, centred_axes: Sequence[int] = ()
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """The index of the overlap in the source and in the target.

    Args:
        source_shape: Shape of the source array.
        target_shape: Shape of the target array, of the same rank.
        centred_axes: Axes on which the smaller array is centred in the larger one
            (negative axes count from the end); on the others both start at 0.

    Returns:
        ``(source_index, target_index)``: tuples of slices, one per axis, such
        that ``target[target_index] = source[source_index]`` copies the overlap.

    Raises:
        ValueError: If the ranks differ or an axis is out of range.

    Example:

    >>> overlap_slices((5,), (3,), centred_axes=(0,))
    ((slice(1, 4, None),), (slice(0, 3, None),))
    """
    source_shape, target_shape = tuple(source_shape), tuple(target_shape)
    if len(source_shape) != len(target_shape):
        raise ValueError(
            f"The overlap needs arrays of the same rank. Received: source_shape={source_shape}, "
            f"target_shape={target_shape}"
        )
    rank = len(target_shape)
    centred = set()
    for axis in centred_axes:
        if not -rank <= axis < rank:
            raise ValueError(f"centred_axes must be axes of a rank-{rank} array. Received: centred_axes={centred_axes}")
        centred.add(axis % rank)
    source_index, target_index = [], []
    for axis, (source_size, target_size) in enumerate(zip(source_shape, target_shape)):
        size = min(source_size, target_size)
        source_start = (source_size - size) // 2 if axis in centred else 0
        target_start = (target_size - size) // 2 if axis in centred else 0
        source_index.append(slice(source_start, source_start + size))
        target_index.append(slice(target_start, target_start + size))
    return tuple(source_index), tuple(target_index)


def overlap_size(source_shape: Sequence[int], target_shape: Sequence[int]) -> int:
    """How many values the overlap of two same-rank shapes holds.

    Example:

    >>> overlap_size((3, 3, 16, 32), (3, 3, 24, 16))
    2304
    """
    return int(np.prod([min(a, b) for a, b in zip(source_shape, target_shape)], dtype=np.int64))


def copy_overlap(source: np.ndarray, target: np.ndarray, *, centred_axes: Sequence[int] = ()) -> np.ndarray:
    """A copy of ``target`` whose overlap with ``source`` holds ``source``'s values.

    Args:
        source: The array copied from.
        target: The array copied into; it is not changed.
        centred_axes: As in :func:`overlap_slices`.

    Returns:
        A new array of ``target``'s shape and dtype.
    """
    source, target = np.asarray(source), np.asarray(target)
    source_index, target_index = overlap_slices(source.shape, target.shape, centred_axes=centred_axes)
    result = np.array(target, copy=True)
    result[target_index] = source[source_index].astype(target.dtype)
    return result
