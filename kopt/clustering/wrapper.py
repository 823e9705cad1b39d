"""The ClusterWeights layer wrapper: shared centroids trained by straight-through gradients.

Per clusterable weight ``w`` the wrapper holds trainable ``centroids`` (``(K,)``,
or ``(channels, K)`` per channel), non-trainable int32 ``indices`` shaped like
``w`` and, with ``preserve_sparsity``, a 0/1 ``sparsity_mask`` of the non-zeros
``w`` had when the wrapper was built. The wrapped layer runs with ``w`` replaced by

    w_c = (c[indices] + w - stop_gradient(w)) * mask

whose value is exactly ``c[indices] * mask``. Its gradient reaches the
centroids (each one receives the sum of its weights' gradients) and, straight
through, the original weights, which keep training so a weight can move to
another cluster: in a training call the indices are first recomputed as each
weight's nearest centroid (:mod:`kopt.clustering.centroids`). Inference uses the
stored indices, which is what :func:`kopt.clustering.strip_clustering` bakes in.

With ``preserve_sparsity`` centroid 0 is pinned at 0 (its gradient is cut) and
the masked weights get no gradient, so the zeros of a pruned model stay zeros.

Under ``tf.distribute`` the indices are on-read synchronized variables: each
replica computes the same indices from the same mirrored weights and centroids,
with no cross-replica traffic.
"""

import numbers
from typing import Any

import keras
import numpy as np
from keras import ops

from kopt.clustering import centroids as centroids_lib
from kopt.clustering import clusterable
from kopt.utils.substitution import SubstitutingWrapper


@keras.saving.register_keras_serializable(package="kopt")
class ClusterWeights(SubstitutingWrapper):
    """Clusters the weights of the wrapped layer into ``number_of_clusters`` values.

    Prefer :func:`kopt.clustering.cluster_weights`, which wraps whole models.

    Args:
        layer: The layer to cluster: a supported built-in layer or one following
            the :class:`kopt.clustering.ClusterableLayer` protocol.
        number_of_clusters: ``K``, the number of distinct values per weight (per
            channel with ``cluster_per_channel``), at least 2.
        cluster_centroids_init: A :class:`CentroidInitialization` or its name.
        preserve_sparsity: Keep zero weights at zero; the zero counts as one of
            the ``K`` values.
        cluster_per_channel: ``K`` centroids for each slice of the last axis (the
            output channel) of every weight of rank 2 or more.
        **kwargs: Base layer arguments (``name``, ``dtype``...).

    Raises:
        ValueError: For an unsupported or already wrapped layer, a model, or bad
            settings.

    Example:

    >>> import keras, numpy as np
    >>> wrapped = ClusterWeights(keras.layers.Dense(4), number_of_clusters=3)
    >>> wrapped(np.ones((2, 5), "float32")).shape
    TensorShape([2, 4])
    >>> len(np.unique(wrapped.clustered_weights()[0]))
    3
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        number_of_clusters: int,
        cluster_centroids_init: centroids_lib.CentroidInitialization | str = "KMEANS_PLUS_PLUS",
        preserve_sparsity: bool = False,
        cluster_per_channel: bool = False,
        **kwargs,
    ):
        self.number_of_clusters, self.cluster_centroids_init = check_clustering_arguments(
            number_of_clusters, cluster_centroids_init, preserve_sparsity, cluster_per_channel
        )
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(f"ClusterWeights wraps a keras layer. Received: layer={layer!r}")
        if isinstance(layer, keras.Model):
            raise ValueError(
                "ClusterWeights wraps layers, not models. Use kopt.clustering.cluster_weights(model) instead. "
                f"Received: layer={layer.name!r} ({type(layer).__name__})"
            )
        if isinstance(layer, ClusterWeights):
            raise ValueError(f"Layer {layer.name!r} is already wrapped by ClusterWeights.")
        if not clusterable.is_clusterable(layer):
            raise ValueError(clusterable.unsupported_message(layer))
        self.preserve_sparsity = preserve_sparsity
        self.cluster_per_channel = cluster_per_channel
        kwargs.setdefault("name", f"cluster_{layer.name}")
        # A frozen layer (a transfer-learning backbone's) stays frozen: its centroids do not train.
        kwargs.setdefault("trainable", layer.trainable)
        kwargs.setdefault("dtype", layer.dtype_policy)
        kwargs["autocast"] = False
        super().__init__(layer, **kwargs)

    def build(self, input_shape: Any = None) -> None:
        if not self.layer.built:
            self.layer.build(input_shape)
        self.centroids, self.indices, self.sparsity_masks = [], [], []
        for name, weight in clusterable.get_clusterable_weights(self.layer):
            values = keras.ops.convert_to_numpy(weight.value).astype(np.float32)
            initial = self._initial_centroids(values)
            self.centroids.append(
                self.add_weight(
                    name=f"{name}_cluster_centroids",
                    shape=initial.shape,
                    initializer=_constant(initial),
                    trainable=True,
                    dtype=weight.dtype,
                    autocast=False,
                )
            )
            indices = keras.ops.convert_to_numpy(centroids_lib.assign_to_centroids(values, initial))
            # Written by every replica inside the compiled step; add_weight cannot
            # ask for on-read synchronization.
            self.indices.append(
                keras.Variable(
                    initializer=_constant(indices),
                    shape=values.shape,
                    dtype="int32",
                    trainable=False,
                    aggregation="only_first_replica",
                    synchronization="on_read",
                    name=f"{name}_pulling_indices",
                )
            )
            if self.preserve_sparsity:
                self.sparsity_masks.append(
                    self.add_weight(
                        name=f"{name}_sparsity_mask",
                        shape=values.shape,
                        initializer=_constant((values != 0).astype(np.float32)),
                        trainable=False,
                        dtype=weight.dtype,
                        autocast=False,
                    )
                )
        self.built = True

    def _per_channel(self, values):
        return self.cluster_per_channel and values.ndim >= 2

    def _initial_centroids(self, values):
        def fit(channel_values):
            return centroids_lib.init_centroids(
                channel_values,
                self.number_of_clusters,
                self.cluster_centroids_init,
                preserve_sparsity=self.preserve_sparsity,
            )

        if self._per_channel(values):
            channels = values.reshape(-1, values.shape[-1])
            return np.stack([fit(channels[:, index]) for index in range(values.shape[-1])])
        return fit(values)

    @property
    def clusterable_weights(self) -> list[keras.Variable]:
        """The wrapped layer's weight variables that are clustered."""
        return [weight for _, weight in clusterable.get_clusterable_weights(self.layer)]

    def _effective_centroids(self, centroids):
        if not self.preserve_sparsity:
            return centroids.value
        # Centroid 0 is the pinned zero: multiplying by 0 also cuts its gradient.
        pin = np.ones(centroids.shape[-1], dtype="float32")
        pin[0] = 0.0
        return ops.multiply(centroids.value, ops.cast(pin, centroids.dtype))

    def _clustered(self, index, weight, training):
        centroids = self._effective_centroids(self.centroids[index])
        if training:
            indices = centroids_lib.assign_to_centroids(weight.value, centroids)
            self.indices[index].assign(indices)
        else:
            indices = self.indices[index].value
        values = centroids_lib.clustered_values(centroids, indices)
        if training:
            # Straight through: the value is the centroid, the gradient also
            # reaches the original weight.
            values = values + (weight.value - ops.stop_gradient(weight.value))
        if self.preserve_sparsity:
            values = ops.multiply(values, self.sparsity_masks[index].value)
        return values

    def call(self, inputs: Any, *args, training: bool | None = None, **kwargs) -> Any:
        clustered = {id(w): self._clustered(i, w, training) for i, w in enumerate(self.clusterable_weights)}
        return self.call_with_values(clustered, inputs, *args, training=training, **kwargs)

    def clustered_weights(self) -> list[np.ndarray]:
        """The wrapped layer's weights as NumPy arrays, clustered ones as inference sees them."""
        clustered = {id(w): self._clustered(i, w, False) for i, w in enumerate(self.clusterable_weights)}
        return [keras.ops.convert_to_numpy(clustered.get(id(v), v.value)) for v in self.layer.weights]

    def get_config(self) -> dict[str, Any]:
        config = {
            "number_of_clusters": self.number_of_clusters,
            "cluster_centroids_init": self.cluster_centroids_init.value,
            "preserve_sparsity": self.preserve_sparsity,
            "cluster_per_channel": self.cluster_per_channel,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> "ClusterWeights":
        config = dict(config)
        layer = keras.saving.deserialize_keras_object(config.pop("layer"), custom_objects=custom_objects)
        return cls(layer, **config)


def check_clustering_arguments(number_of_clusters, cluster_centroids_init, preserve_sparsity, cluster_per_channel):
    """Validates the settings shared by the wrapper and ``cluster_weights``.

    Returns:
        ``(number_of_clusters, CentroidInitialization)``.

    Raises:
        ValueError: Naming the argument and the value received.
    """
    if (
        isinstance(number_of_clusters, bool)
        or not isinstance(number_of_clusters, numbers.Integral)
        or number_of_clusters < 2
    ):
        raise ValueError(
            f"`number_of_clusters` must be an integer of at least 2. Received: number_of_clusters={number_of_clusters!r}"
        )
    try:
        init = centroids_lib.CentroidInitialization(cluster_centroids_init)
    except ValueError:
        names = [member.value for member in centroids_lib.CentroidInitialization]
        raise ValueError(
            f"`cluster_centroids_init` must be a CentroidInitialization or one of {names}. "
            f"Received: cluster_centroids_init={cluster_centroids_init!r}"
        ) from None
    for name, value in (("preserve_sparsity", preserve_sparsity), ("cluster_per_channel", cluster_per_channel)):
        if not isinstance(value, bool):
            raise ValueError(f"`{name}` must be a bool. Received: {name}={value!r}")
    return int(number_of_clusters), init


def _constant(array):
    def initializer(shape, dtype=None):
        return ops.cast(ops.reshape(ops.convert_to_tensor(array), shape), dtype)

    return initializer
