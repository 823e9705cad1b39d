"""The maths of weight clustering: where centroids start, and which one a weight takes.

Clustering replaces the values of a weight tensor by ``K`` shared values, the
centroids. A weight ``w`` takes the nearest centroid,
``index(w) = argmin_k |w - c_k|``, and the clustered tensor is ``c[index]``.

Initialization (once, in NumPy, on the weights' values ``v``):

* ``LINEAR``: ``K`` evenly spaced values from ``min(v)`` to ``max(v)``.
* ``RANDOM``: ``K`` values drawn uniformly in ``[min(v), max(v)]`` (seeded).
* ``DENSITY_BASED``: the ``K`` quantiles ``F^-1((k + 1/2) / K)`` of ``v``'s
  empirical distribution, so dense regions get more centroids.
* ``KMEANS_PLUS_PLUS``: k-means++ seeding (Arthur & Vassilvitskii, 2007: each new
  centroid drawn with probability proportional to ``D(v)^2``, the squared distance
  to the nearest centroid so far), refined by a few Lloyd iterations.

With ``preserve_sparsity`` centroid 0 is pinned at 0 and the other
``K - 1`` are fitted to the non-zero values only, so the zeros of a pruned
tensor stay exactly zero and count as one of the ``K`` values.

Per-channel clustering fits ``K`` centroids to each slice of the last axis (the
output channel of Dense and convolution kernels): centroids have shape
``(channels, K)``.
"""

import enum

import numpy as np
from keras import ops

__all__ = ["CentroidInitialization", "assign_to_centroids", "clustered_values", "init_centroids"]

_LLOYD_ITERATIONS = 10


class CentroidInitialization(str, enum.Enum):
    """How cluster centroids start (tfmot's names).

    Example:

    >>> CentroidInitialization("LINEAR") is CentroidInitialization.LINEAR
    True
    """

    LINEAR = "LINEAR"
    RANDOM = "RANDOM"
    DENSITY_BASED = "DENSITY_BASED"
    KMEANS_PLUS_PLUS = "KMEANS_PLUS_PLUS"


def init_centroids(values, number_of_clusters, method, *, preserve_sparsity=False, seed=0):
    """Returns the starting centroids of one tensor (or one channel), sorted.

    Args:
        values: The weight values; any shape, flattened.
        number_of_clusters: ``K``, at least 2.
        method: A :class:`CentroidInitialization` or its name.
        preserve_sparsity: Pin one centroid at 0 and fit the others to the
            non-zero values.
        seed: Seed of the random draws (``RANDOM`` and ``KMEANS_PLUS_PLUS``).

    Returns:
        A float32 NumPy array of ``K`` centroids in ascending order; with
        ``preserve_sparsity`` the pinned 0 comes first, then the others ascending.

    Raises:
        ValueError: For a bad method or ``number_of_clusters``.

    Example:

    >>> init_centroids([0.0, 1.0, 2.0, 4.0], 3, "LINEAR").tolist()
    [0.0, 2.0, 4.0]
    """
    method = CentroidInitialization(method) if isinstance(method, str) else method
    if not isinstance(method, CentroidInitialization):
        raise ValueError(f"method must be a CentroidInitialization. Received: method={method!r}")
    if isinstance(number_of_clusters, bool) or not isinstance(number_of_clusters, int) or number_of_clusters < 2:
        raise ValueError(
            f"number_of_clusters must be an integer of at least 2. Received: number_of_clusters={number_of_clusters!r}"
        )
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    count = number_of_clusters
    if preserve_sparsity:
        values = values[values != 0.0]
        count -= 1
    if values.size == 0:
        centroids = np.zeros(count)
    else:
        rng = np.random.default_rng(seed)
        centroids = _INITIALIZERS[method](values, count, rng)
    centroids = np.sort(centroids)
    if preserve_sparsity:
        centroids = np.concatenate([[0.0], centroids])
    return centroids.astype(np.float32)


def _linear(values, count, rng):
    return np.linspace(values.min(), values.max(), count)


def _random(values, count, rng):
    return rng.uniform(values.min(), values.max(), size=count)


def _density(values, count, rng):
    return np.quantile(values, (np.arange(count) + 0.5) / count)


def _kmeans_plus_plus(values, count, rng):
    centroids = [values[rng.integers(values.size)]]
    distances = (values - centroids[0]) ** 2
    for _ in range(1, count):
        total = distances.sum()
        # All values already coincide with a centroid: repeat one.
        chosen = values[rng.choice(values.size, p=distances / total)] if total > 0 else centroids[-1]
        centroids.append(chosen)
        distances = np.minimum(distances, (values - chosen) ** 2)
    centroids = np.sort(np.asarray(centroids))
    for _ in range(_LLOYD_ITERATIONS):
        nearest = np.argmin(np.abs(values[:, None] - centroids[None, :]), axis=1)
        sums = np.bincount(nearest, weights=values, minlength=count)
        counts = np.bincount(nearest, minlength=count)
        # An empty cluster keeps its centroid.
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
    return centroids


_INITIALIZERS = {
    CentroidInitialization.LINEAR: _linear,
    CentroidInitialization.RANDOM: _random,
    CentroidInitialization.DENSITY_BASED: _density,
    CentroidInitialization.KMEANS_PLUS_PLUS: _kmeans_plus_plus,
}


def assign_to_centroids(weights, centroids):
    """Index of the nearest centroid of every weight, as int32.

    Args:
        weights: A tensor of any shape ``(..., channels)``.
        centroids: ``(K,)`` shared centroids, or ``(channels, K)`` per channel.

    Returns:
        An int32 tensor shaped like ``weights`` with values in ``[0, K)``.

    Example:

    >>> import numpy as np
    >>> indices = assign_to_centroids(np.array([0.1, 0.9, 2.2]), np.array([0.0, 1.0, 2.0]))
    >>> np.asarray(indices).tolist()
    [0, 1, 2]
    """
    weights = ops.convert_to_tensor(weights)
    centroids = ops.cast(centroids, weights.dtype)
    # (..., K) shared, or (..., channels, K) per channel, broadcast the same way.
    distances = ops.abs(ops.expand_dims(weights, -1) - centroids)
    return ops.cast(ops.argmin(distances, axis=-1), "int32")


def clustered_values(centroids, indices):
    """The clustered tensor ``c[index]``, shaped like ``indices``.

    Args:
        centroids: ``(K,)`` shared centroids, or ``(channels, K)`` per channel
            (the channel is the last axis of ``indices``).
        indices: int32 indices from :func:`assign_to_centroids`.

    Returns:
        The tensor of centroid values; its gradient with respect to ``centroids``
        sums the gradients of the weights in each cluster.

    Example:

    >>> import numpy as np
    >>> values = clustered_values(np.array([0.0, 1.0]), np.array([[1, 0], [0, 1]]))
    >>> np.asarray(values).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    centroids = ops.convert_to_tensor(centroids)
    indices = ops.convert_to_tensor(indices, "int32")
    if len(centroids.shape) == 1:
        return ops.take(centroids, indices)
    channels, count = centroids.shape
    offsets = ops.arange(channels, dtype="int32") * count
    return ops.take(ops.reshape(centroids, (-1,)), indices + offsets)
