"""cluster_weights and strip_clustering: wrap a layer, a list of layers or a model, and back."""

import warnings

import keras

from kopt.clustering import clusterable
from kopt.clustering.centroids import CentroidInitialization
from kopt.clustering.wrapper import ClusterWeights
from kopt.clustering.wrapper import check_clustering_arguments
from kopt.utils import layer_kinds
from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_layer
from tflite_export.export_hooks import register_export_hook

__all__ = ["cluster_scope", "cluster_weights", "strip_clustering"]


def cluster_scope() -> keras.saving.CustomObjectScope:
    """A ``custom_object_scope`` holding the clustering wrapper, for tfmot code that loads inside one.

    kopt registers its classes with Keras, so loading needs no scope; this exists
    so that ``with cluster_scope(): keras.models.load_model(path)`` ports as is.

    Example:

    >>> import keras
    >>> with cluster_scope():
    ...     keras.saving.get_registered_object("ClusterWeights").__name__
    'ClusterWeights'
    """
    return keras.saving.custom_object_scope({"ClusterWeights": ClusterWeights})


_CLUSTER_ADVICE = (
    "Wrap its layers individually instead, e.g. `self.dense = "
    "kopt.clustering.cluster_weights(keras.layers.Dense(10), number_of_clusters=16)` in its __init__."
)
_STRIP_ADVICE = "Read each ClusterWeights layer's clustered_weights() and assign them to `wrapper.layer`."


def cluster_weights(
    to_cluster: keras.layers.Layer | list | keras.Model,
    number_of_clusters: int,
    cluster_centroids_init: CentroidInitialization | str = CentroidInitialization.KMEANS_PLUS_PLUS,
    preserve_sparsity: bool = False,
    cluster_per_channel: bool = False,
    **kwargs,
) -> keras.layers.Layer | list[keras.layers.Layer] | keras.Model:
    """Makes a layer or model share ``number_of_clusters`` values per weight while it trains.

    Same names and meanings as ``tfmot.clustering.keras.cluster_weights``:

    * a layer: returns it wrapped in :class:`ClusterWeights`;
    * a list of layers: returns the list with each clusterable layer wrapped;
    * a Sequential or functional model, nested models included: returns a copy
      (new layers, same weights, not compiled) with every supported layer
      wrapped. Layers with weights that cannot be clustered are left as they are,
      and one warning lists them.

    Centroids start from the layer's current weights, so cluster a trained model,
    fine-tune the result (a few epochs at a low learning rate), then call
    :func:`strip_clustering` before export.

    Args:
        to_cluster: A layer, a list of layers, or a Sequential/functional model.
        number_of_clusters: Distinct values per weight (per output channel with
            ``cluster_per_channel``), at least 2.
        cluster_centroids_init: A :class:`CentroidInitialization` or its name.
        preserve_sparsity: Keep the zeros of a pruned model at zero; zero is one
            of the ``number_of_clusters`` values.
        cluster_per_channel: Fit centroids to each output channel separately.
        **kwargs: Passed to the wrapper (e.g. ``name``); only with a single layer.

    Returns:
        The wrapped layer, list of layers, or a new model.

    Raises:
        ValueError: For bad settings, an unsupported single layer, a subclassed
            model, or an object that is none of the above.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    >>> clustered = cluster_weights(model, number_of_clusters=4, cluster_centroids_init="LINEAR")
    >>> [type(layer).__name__ for layer in clustered.layers]
    ['ClusterWeights', 'ClusterWeights']
    """
    number_of_clusters, cluster_centroids_init = check_clustering_arguments(
        number_of_clusters, cluster_centroids_init, preserve_sparsity, cluster_per_channel
    )
    params = {
        "number_of_clusters": number_of_clusters,
        "cluster_centroids_init": cluster_centroids_init,
        "preserve_sparsity": preserve_sparsity,
        "cluster_per_channel": cluster_per_channel,
    }
    if isinstance(to_cluster, keras.Model):
        _no_kwargs(kwargs, to_cluster)
        return _cluster_model(to_cluster, params)
    if isinstance(to_cluster, (list, tuple)):
        _no_kwargs(kwargs, to_cluster)
        return [_cluster_list_item(layer, params) for layer in to_cluster]
    if isinstance(to_cluster, keras.layers.Layer):
        if isinstance(to_cluster, ClusterWeights):
            return to_cluster
        return ClusterWeights(to_cluster, **params, **kwargs)
    raise ValueError(
        "cluster_weights accepts a keras layer, a list of layers, or a Sequential or functional model. "
        f"Received: to_cluster of type {type(to_cluster).__name__}"
    )


def strip_clustering(model: keras.Model) -> keras.Model:
    """Removes every ``ClusterWeights`` wrapper, keeping the clustered weights.

    Each wrapper becomes a copy of the layer it wraps (its own class and config)
    whose clustered weights hold the centroid values (and the zeros, with
    ``preserve_sparsity``); other layers are copied with their weights.

    Args:
        model: A Sequential or functional ``keras.Model``, clustered or not.

    Returns:
        A new, uncompiled ``keras.Model`` without clustering wrappers or variables.

    Raises:
        ValueError: If ``model`` is not a Sequential or functional model.

    Example:

    >>> import keras
    >>> clustered = cluster_weights(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), 3)
    >>> [type(layer).__name__ for layer in strip_clustering(clustered).layers]
    ['Dense']
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"strip_clustering expects a keras.Model. Received: model={model!r}")

    def unwrap(layer):
        if isinstance(layer, ClusterWeights):
            return copy_layer(layer.layer, weights=layer.clustered_weights())
        return copy_layer(layer)

    return clone_graph_model(model, unwrap, action="strip clustering from", advice=_STRIP_ADVICE)


def _cluster_list_item(layer, params):
    if isinstance(layer, (ClusterWeights, keras.layers.InputLayer)):
        return layer
    if isinstance(layer, keras.Model):
        raise ValueError(
            f"Received model {layer.name!r} in a list of layers to cluster; call cluster_weights on the model itself."
        )
    if not clusterable.is_clusterable(layer):
        return layer
    return ClusterWeights(layer, **params)


def _cluster_model(model, params):
    left_unclustered = []

    def wrap(layer):
        clone = copy_layer(layer)
        if isinstance(layer, ClusterWeights):
            return clone
        if not clusterable.is_clusterable(layer):
            # Normalization and PReLU are left alone by design, without a warning.
            if layer.weights and not layer_kinds.is_left_alone_by_design(layer):
                left_unclustered.append(f"{layer.name} ({type(layer).__name__})")
            return clone
        wrapper = ClusterWeights(clone, **params)
        if clone.built:
            # Built here, outside the model's name scope, so variable paths are
            # the ones a loaded copy of the model gets.
            wrapper.build(None)
        return wrapper

    clustered = clone_graph_model(model, wrap, action="cluster", advice=_CLUSTER_ADVICE)
    if left_unclustered:
        warnings.warn(
            f"cluster_weights left {len(left_unclustered)} layer(s) with weights unclustered because "
            f"kopt.clustering does not support them: {', '.join(left_unclustered)}. To cluster one, give its "
            "class a `get_clusterable_weights()` method (the kopt.clustering.ClusterableLayer protocol).",
            stacklevel=3,
        )
    return clustered


def _no_kwargs(kwargs, to_cluster):
    if kwargs:
        raise ValueError(
            f"Extra keyword arguments apply to a single layer only; received {sorted(kwargs)} "
            f"with {type(to_cluster).__name__} {getattr(to_cluster, 'name', '')!r}."
        )


def _prepare_for_export(model, mode):
    del mode  # every mode converts the plain layers with the shared values baked in
    return strip_clustering(model)


register_export_hook(ClusterWeights, prepare=_prepare_for_export)
