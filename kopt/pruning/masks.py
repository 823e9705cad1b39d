"""The maths of pruning masks, as plain functions of tensors (``keras.ops`` only).

Nothing here knows about layers or variables: each function takes a weight tensor
and returns a 0/1 mask of the same shape and dtype (and a threshold), so the
wrapper only wires variables and the maths can be tested on its own.

Three mask kinds, and one baseline:

* **Unstructured** (:func:`magnitude_mask`): the ``round(size * sparsity)``
  smallest-magnitude weights are zeroed, exactly; ties are broken by position, so
  the count never drifts with repeated values (tfmot's ``>= threshold`` test can
  keep more weights than asked when magnitudes tie).
* **Block** (:func:`block_mask`): the weight, seen as a matrix, is cut into
  ``block_size = (rows, cols)`` tiles; each tile is scored by the average
  (``"AVG"``) or maximum (``"MAX"``) magnitude of its weights, and the lowest
  scoring ``round(num_tiles * sparsity)`` tiles are zeroed whole. Tiles at the
  right and bottom edges may be partial; an average counts only real weights.
* **M:N** (:func:`m_by_n_mask`), tfmot's ``sparsity_m_by_n=(m, n)``: in every
  group of ``n`` consecutive weights along the *input-channel axis* (axis -2 of a
  Dense ``(in, out)`` or Conv ``(..., in, out)`` kernel), the ``m`` smallest are
  zeroed. ``(2, 4)`` is the 2:4 pattern of TFLite/XNNPACK, whose kernels store
  input channels innermost (``(out, in)`` and ``(out, h, w, in)``). A last,
  partial group keeps its ``n - m`` largest weights, or all if it has fewer.
* **Random** (:func:`random_mask`), a baseline criterion: ``round(size *
  sparsity)`` weights chosen at random are zeroed, so that gains of a real
  criterion over chance can be measured.

The threshold returned with a mask is the smallest kept magnitude (tile score for
block masks): weights below it were pruned.

Example:

>>> import numpy as np
>>> mask, threshold = magnitude_mask(np.array([[0.1, -2.0], [0.5, 0.05]]), 0.5)
>>> mask.numpy().tolist(), float(threshold)
([[0.0, 1.0], [1.0, 0.0]], 0.5)
"""

import math

import keras
from keras import ops

BLOCK_POOLING_TYPES = ("AVG", "MAX")
CRITERIA = ("magnitude", "random")


def magnitude_mask(weights, sparsity) -> tuple:
    """Zeroes the ``round(size * sparsity)`` smallest-magnitude entries.

    At least one weight is always kept, as in tfmot.

    Args:
        weights: A float tensor of any shape.
        sparsity: Scalar in ``[0, 1)`` (float or tensor): the fraction to zero.

    Returns:
        ``(mask, threshold)``: a 0/1 tensor shaped and typed like ``weights``, and
        the smallest kept magnitude.
    """
    weights = ops.convert_to_tensor(weights)
    mask, threshold = _rank_mask(ops.reshape(ops.abs(weights), (-1,)), sparsity)
    return ops.cast(ops.reshape(mask, ops.shape(weights)), weights.dtype), ops.cast(threshold, weights.dtype)


def random_mask(weights, sparsity, seed: int) -> tuple:
    """Zeroes ``round(size * sparsity)`` entries chosen at random (a baseline).

    Each entry's score is a uniform draw fixed by ``seed``: the same on every call
    and on every replica, with no state to synchronize. Scores of entries that are
    already zero are zeroed too, so weights pruned earlier go first and masks only
    grow as the sparsity rises. At least one weight is always kept.

    Args:
        weights: A float tensor of any shape (the effective, masked weights).
        sparsity: Scalar in ``[0, 1)``: the fraction to zero.
        seed: Integer that fixes the draw.

    Returns:
        ``(mask, threshold)`` as in :func:`magnitude_mask`; the threshold is the
        smallest kept score, not a magnitude.

    Example:

    >>> import numpy as np
    >>> mask, _ = random_mask(np.ones((10, 10), "float32"), 0.3, seed=1)
    >>> int(mask.numpy().sum())
    70
    """
    weights = ops.convert_to_tensor(weights)
    draws = keras.random.uniform(ops.shape(weights), minval=1e-6, maxval=1.0, dtype="float32", seed=int(seed))
    scores = ops.where(ops.not_equal(weights, 0), draws, ops.zeros_like(draws))
    mask, threshold = _rank_mask(ops.reshape(scores, (-1,)), sparsity)
    return ops.cast(ops.reshape(mask, ops.shape(weights)), weights.dtype), ops.cast(threshold, weights.dtype)


def block_mask(weights, sparsity, block_size: tuple[int, int], block_pooling_type: str = "AVG") -> tuple:
    """Zeroes whole ``block_size`` tiles of a weight seen as a matrix.

    Args:
        weights: A float tensor whose shape, with size-1 dimensions dropped, is 2-D
            (Dense and Embedding kernels, 1x1 convolutions).
        sparsity: Scalar in ``[0, 1)``: the fraction of tiles to zero.
        block_size: ``(rows, cols)`` of a tile.
        block_pooling_type: ``"AVG"`` or ``"MAX"``: how a tile's magnitudes are
            combined into its score.

    Returns:
        ``(mask, threshold)`` as in :func:`magnitude_mask`; the threshold is the
        smallest kept tile score.

    Raises:
        ValueError: If the weight is not a matrix or the pooling type is unknown.
    """
    weights = ops.convert_to_tensor(weights)
    check_weight_shape(tuple(weights.shape), block_size=block_size, block_pooling_type=block_pooling_type)
    rows, cols = _as_matrix_shape(tuple(weights.shape))
    block_rows, block_cols = block_size
    tiles_down, tiles_across = math.ceil(rows / block_rows), math.ceil(cols / block_cols)
    padding = ((0, tiles_down * block_rows - rows), (0, tiles_across * block_cols - cols))

    def tiles(matrix):
        padded = ops.pad(matrix, padding)
        return ops.reshape(padded, (tiles_down, block_rows, tiles_across, block_cols))

    magnitudes = ops.abs(ops.reshape(weights, (rows, cols)))
    if block_pooling_type == "MAX":
        scores = ops.max(tiles(magnitudes), axis=(1, 3))
    else:
        # Padding adds zeros; dividing by the real count keeps edge tiles fair.
        real_counts = ops.sum(tiles(ops.ones((rows, cols), magnitudes.dtype)), axis=(1, 3))
        scores = ops.sum(tiles(magnitudes), axis=(1, 3)) / real_counts
    tile_mask, threshold = _rank_mask(ops.reshape(scores, (-1,)), sparsity)
    tile_mask = ops.reshape(tile_mask, (tiles_down, tiles_across))
    mask = ops.repeat(ops.repeat(tile_mask, block_rows, axis=0), block_cols, axis=1)[:rows, :cols]
    return ops.cast(ops.reshape(mask, ops.shape(weights)), weights.dtype), ops.cast(threshold, weights.dtype)


def m_by_n_mask(weights, sparsity_m_by_n: tuple[int, int]) -> tuple:
    """Zeroes the ``m`` smallest of every ``n`` consecutive input-channel weights.

    Args:
        weights: A float tensor of rank >= 2 whose axis -2 is the input channel.
        sparsity_m_by_n: ``(m, n)`` with ``0 < m < n``: ``m`` zeros per group.

    Returns:
        ``(mask, threshold)`` as in :func:`magnitude_mask`.

    Raises:
        ValueError: If the weight's rank is below 2 or ``(m, n)`` is invalid.
    """
    weights = ops.convert_to_tensor(weights)
    check_weight_shape(tuple(weights.shape), sparsity_m_by_n=sparsity_m_by_n)
    zeros_per_group, group = sparsity_m_by_n
    magnitudes = ops.moveaxis(ops.abs(weights), -2, -1)
    moved_shape = tuple(magnitudes.shape)
    channels = moved_shape[-1]
    rows = math.prod(moved_shape[:-1])
    groups = math.ceil(channels / group)
    # Padding scores -1, below any magnitude, so a partial last group loses its
    # padding before any real weight.
    padded = ops.pad(
        ops.reshape(magnitudes, (rows, channels)), ((0, 0), (0, groups * group - channels)), constant_values=-1.0
    )
    grouped = ops.reshape(padded, (rows, groups, group))
    ranks = ops.argsort(ops.argsort(grouped, axis=-1), axis=-1)
    keep = ops.reshape(ops.greater_equal(ranks, zeros_per_group), (rows, groups * group))[:, :channels]
    mask = ops.moveaxis(ops.reshape(keep, moved_shape), -1, -2)
    kept = ops.where(mask, ops.abs(weights), ops.full_like(weights, float("inf")))
    return ops.cast(mask, weights.dtype), ops.cast(ops.min(kept), weights.dtype)


def compute_mask(
    weights,
    sparsity,
    *,
    block_size: tuple[int, int] = (1, 1),
    block_pooling_type: str = "AVG",
    sparsity_m_by_n: tuple[int, int] | None = None,
    criterion: str = "magnitude",
    seed: int = 0,
) -> tuple:
    """Dispatches to the mask kind the wrapper was configured with.

    Args:
        weights: The effective (already masked) weight tensor.
        sparsity: The schedule's sparsity; ignored for M:N masks, whose sparsity is
            ``m / n``.
        block_size: ``(1, 1)`` for unstructured masks, else the tile shape.
        block_pooling_type: ``"AVG"`` or ``"MAX"``, for block masks.
        sparsity_m_by_n: ``(m, n)`` for M:N masks, else ``None``.
        criterion: ``"magnitude"``, or ``"random"`` for unstructured masks
            chosen by :func:`random_mask`.
        seed: The draw of a ``"random"`` criterion.

    Returns:
        ``(mask, threshold)``.
    """
    if criterion == "random":
        return random_mask(weights, sparsity, seed)
    if sparsity_m_by_n is not None:
        return m_by_n_mask(weights, sparsity_m_by_n)
    if tuple(block_size) != (1, 1):
        return block_mask(weights, sparsity, block_size, block_pooling_type)
    return magnitude_mask(weights, sparsity)


def check_weight_shape(
    shape: tuple,
    *,
    block_size: tuple[int, int] = (1, 1),
    block_pooling_type: str = "AVG",
    sparsity_m_by_n: tuple[int, int] | None = None,
) -> None:
    """Raises ``ValueError`` if a weight of ``shape`` cannot take the mask kind.

    Args:
        shape: The weight's static shape.
        block_size: As in :func:`compute_mask`.
        block_pooling_type: As in :func:`compute_mask`.
        sparsity_m_by_n: As in :func:`compute_mask`.

    Raises:
        ValueError: Block masks need a weight that is a matrix once size-1
            dimensions are dropped; M:N masks need rank >= 2.
    """
    if block_pooling_type not in BLOCK_POOLING_TYPES:
        raise ValueError(
            f"`block_pooling_type` must be one of {BLOCK_POOLING_TYPES}. "
            f"Received: block_pooling_type={block_pooling_type!r}"
        )
    if sparsity_m_by_n is not None:
        m, n = sparsity_m_by_n
        if not 0 < m < n:
            raise ValueError(f"`sparsity_m_by_n` must be (m, n) with 0 < m < n. Received: sparsity_m_by_n={(m, n)}")
        if len(shape) < 2:
            raise ValueError(
                "M:N sparsity groups weights along the input-channel axis (-2) and needs a weight of rank >= 2. "
                f"Received: weight shape={shape}"
            )
    elif tuple(block_size) != (1, 1) and len([d for d in shape if d != 1]) > 2:
        raise ValueError(
            "Block sparsity needs weights that are matrices once size-1 dimensions are dropped "
            f"(Dense, Embedding, 1x1 convolutions). Received: weight shape={shape}, block_size={tuple(block_size)}"
        )


def _as_matrix_shape(shape):
    kept = [d for d in shape if d != 1]
    return tuple([1] * (2 - len(kept)) + kept)


def _rank_mask(scores, sparsity):
    """Mask keeping all but the ``round(size * sparsity)`` lowest scores (1-D)."""
    size = scores.shape[0]
    num_pruned = ops.cast(ops.round(ops.cast(sparsity, "float32") * size), "int32")
    num_pruned = ops.clip(num_pruned, 0, size - 1)
    order = ops.argsort(scores)
    keep_in_order = ops.cast(ops.greater_equal(ops.arange(size, dtype="int32"), num_pruned), scores.dtype)
    mask = ops.scatter(ops.expand_dims(order, -1), keep_in_order, (size,))
    threshold = ops.take(scores, ops.take(order, num_pruned))
    return mask, threshold
