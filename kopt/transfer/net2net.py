"""The array maths of Net2Net (Chen, Goodfellow and Shlens, ICLR 2016), apart from any model.

**Net2WiderNet.** A layer of ``n`` units grows to ``q > n`` units through a
random mapping ``g: {0..q-1} -> {0..n-1}``:

    g(j) = j                      for j < n
    g(j) = uniform sample of {0..n-1}   for j >= n

The widened layer's unit ``j`` is a copy of unit ``g(j)`` (its kernel column
and bias), so it computes the same value. Every layer reading those units sees
each old unit ``c`` ``count(c) = |{j : g(j) = c}|`` times, so its incoming
weights of unit ``j`` are divided by ``count(g(j))``: the copies' contributions
add up to the old one, and the output is unchanged. Elementwise functions
between the two (ReLU, BatchNormalization's per-channel affine map, pooling)
act on each copy as on the original, so they keep this true.

**Net2DeeperNet.** A new layer with an identity kernel and zero bias computes
``phi(I h) = phi(h)``, which is ``h`` when ``phi`` is the identity on the range
of ``h`` (ReLU on ReLU outputs: ``relu(relu(x)) = relu(x)``); for a
convolution the identity is a kernel whose centre tap is ``I``, with ``same``
padding.

Example:

>>> import numpy as np
>>> mapping = replication_map(3, 5, rng=np.random.default_rng(0))
>>> mapping[:3].tolist(), len(mapping)
([0, 1, 2], 5)
>>> int(replication_counts(mapping, 3).sum())
5
"""

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Sequence

import numpy as np

__all__ = ["identity_kernel", "match_positions", "replication_counts", "replication_map"]


def replication_map(units: int, new_units: int, *, rng: np.random.Generator) -> np.ndarray:
    """Net2WiderNet's ``g``: which old unit each of ``new_units`` units copies.

    Args:
        units: The layer's current width ``n``, at least 1.
        new_units: The new width ``q``, above ``units``.
        rng: The random generator drawing the copied units.

    Returns:
        An int64 array of ``new_units`` entries; the first ``units`` are
        ``0..units-1`` and the rest are drawn uniformly, with replacement.

    Raises:
        ValueError: If ``new_units <= units`` or ``units < 1``.
    """
    if units < 1 or new_units <= units:
        raise ValueError(f"new_units must be above units >= 1. Received: units={units}, new_units={new_units}")
    extra = rng.integers(0, units, size=new_units - units)
    return np.concatenate([np.arange(units), extra]).astype(np.int64)


def replication_counts(mapping: np.ndarray, units: int) -> np.ndarray:
    """How many units copy each old unit: ``count(c) = |{j : g(j) = c}|``, at least 1.

    Example:

    >>> replication_counts(np.array([0, 1, 2, 1, 1]), 3).tolist()
    [1, 3, 1]
    """
    return np.bincount(np.asarray(mapping, np.int64), minlength=units)


def identity_kernel(channels: int, kernel_size: Sequence[int] = ()) -> np.ndarray:
    """The kernel of an identity Dense (``kernel_size=()``) or convolution layer.

    Args:
        channels: Input and output channels.
        kernel_size: The convolution's window, each side odd, e.g. ``(3, 3)``.

    Returns:
        A float32 array of shape ``(*kernel_size, channels, channels)``: zeros
        but for ``I`` at the centre tap.

    Raises:
        ValueError: For an even window side, which has no centre tap.

    Example:

    >>> identity_kernel(2, (3,))[:, 0, 0].tolist()
    [0.0, 1.0, 0.0]
    """
    kernel_size = tuple(int(side) for side in kernel_size)
    if any(side < 1 or side % 2 == 0 for side in kernel_size):
        raise ValueError(f"An identity convolution needs odd window sides. Received: kernel_size={kernel_size}")
    kernel = np.zeros((*kernel_size, channels, channels), np.float32)
    kernel[tuple(side // 2 for side in kernel_size)] = np.eye(channels, dtype=np.float32)
    return kernel


def match_positions(
    old_keys: Sequence[Hashable], new_keys: Sequence[Hashable], old_key_of: Callable[[Hashable], Hashable]
) -> np.ndarray:
    """For each entry of a widened tensor's last axis, the entry of the old tensor it copies.

    Every entry of a channel axis is known by a key (which layer made it and
    which of its channels it is); the same key comes back once per spatial
    position after a Flatten, ``m`` times after a depthwise convolution. The
    ``k``-th entry keyed ``key`` in the new tensor copies the ``k``-th entry keyed
    ``old_key_of(key)`` in the old one: both tensors list their entries in the
    same order, the new one only holds more of them.

    Args:
        old_keys: The key of each entry of the old tensor's last axis.
        new_keys: The key of each entry of the new tensor's last axis.
        old_key_of: Maps a new key to the old key it copies (a widened
            channel ``j`` to ``g(j)``; every other key to itself).

    Returns:
        An int64 array: ``positions[p]`` is the old entry new entry ``p`` copies.

    Raises:
        ValueError: If a new entry has no old entry to copy.

    Example:

    >>> keys = [("conv", 0), ("conv", 1)] * 2  # a 2-channel map flattened over 2 positions
    >>> wide = [("conv", 0), ("conv", 1), ("conv", 2)] * 2
    >>> match_positions(keys, wide, lambda key: ("conv", [0, 1, 0][key[1]])).tolist()
    [0, 1, 0, 2, 3, 2]
    """
    where = {}
    for position, key in enumerate(old_keys):
        where.setdefault(key, []).append(position)
    seen = {}
    positions = np.empty(len(new_keys), np.int64)
    for position, key in enumerate(new_keys):
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        candidates = where.get(old_key_of(key), ())
        if occurrence >= len(candidates):
            raise ValueError(
                f"Entry {position} of the widened tensor (key {key!r}) has no entry of the old tensor to copy: "
                f"{old_key_of(key)!r} occurs {len(candidates)} time(s) there"
            )
        positions[position] = candidates[occurrence]
    return positions
