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

__all__ = ["copy_aligned", "copy_overlap", "overlap_size", "overlap_slices"]


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


def copy_aligned(
    source: np.ndarray,
    target: np.ndarray,
    *,
    centred_axes: Sequence[int] = (),
    gates: int = 1,
    noun: str = "gates",
    rows: tuple[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, int, str]:
    """:func:`copy_overlap` with a recurrent layer's gates kept apart and the input rows matched.

    Args:
        source: The array copied from.
        target: The array copied into; it is not changed.
        centred_axes: As in :func:`overlap_slices`, on the arrays as given.
        gates: How many gates the last axis holds one after another (1: none);
            it is split into ``(gates, units)`` so each gate's units overlap.
        noun: What the blocks are called in the description (``"groups"``).
        rows: ``(axis, positions)``: along ``axis``, target entry ``p`` takes
            source entry ``positions[p]``, or keeps its own value where that is
            -1 (:func:`kopt.transfer.alignment.input_positions`); the other axes
            overlap as in :func:`copy_overlap`.

    Returns:
        ``(the new array, how many of its values came from the source, where they
        went)``, the last as ``"target[0:3, 0:16 of each of 4 gates]"``.

    Example:

    >>> value, copied, where = copy_aligned(np.ones((2, 4)), np.zeros((2, 6)), gates=2)
    >>> value[0].tolist(), copied, where
    ([1.0, 1.0, 0.0, 1.0, 1.0, 0.0], 8, 'target[0:2, 0:2 of each of 2 gates]')
    """
    source, target = np.asarray(source), np.asarray(target)
    rank = target.ndim
    centred = tuple(axis % rank for axis in centred_axes)
    valid = None
    if rows is not None:
        axis, positions = rows[0] % rank, np.asarray(rows[1], np.int64)
        valid = positions >= 0
        source = np.take(source, np.where(valid, positions, 0), axis=axis)

    def overlap(into_source, into_target):  # the last axis split into its gates, then put back
        split = (gates, -1) if gates > 1 else (-1,)
        return copy_overlap(
            into_source.reshape(*into_source.shape[:-1], *split),
            into_target.reshape(*into_target.shape[:-1], *split),
            centred_axes=centred,
        ).reshape(into_target.shape)

    value = overlap(source, target)
    copied = overlap(np.ones(source.shape, bool), np.zeros(target.shape, bool))
    if valid is not None:
        keep = valid.reshape([-1 if index == axis else 1 for index in range(rank)])
        copied = copied & keep
        value = np.where(keep, value, target)
    _, target_index = overlap_slices(source.shape, target.shape, centred_axes=centred)
    parts = [f"{index.start}:{index.stop}" for index in target_index]
    if gates > 1:
        units = target.shape[-1] // gates
        parts[-1] = f"0:{min(source.shape[-1] // gates, units)} of each of {gates} {noun}"
    if valid is not None:
        count = int(valid.sum())
        parts[axis] = f"0:{count}" if _prefix(rows[1]) else f"{count} of {valid.size} matched by channel"
    return value, int(copied.sum()), "target[" + ", ".join(parts) + "]"


def _prefix(positions) -> bool:
    """Whether ``positions`` is ``0, 1, ..., k-1`` then only -1: a plain overlap from index 0."""
    positions = np.asarray(positions)
    count = int(np.sum(positions >= 0))
    return bool(np.array_equal(positions[:count], np.arange(count)) and np.all(positions[count:] < 0))
