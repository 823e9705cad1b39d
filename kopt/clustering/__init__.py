"""kopt.clustering: weight clustering for Keras 3, with tfmot's API.

Port from ``tfmot.clustering.keras`` by changing the import::

    from kopt import clustering  # was: tfmot.clustering.keras

    model = clustering.cluster_weights(
        model, number_of_clusters=16,
        cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS)
    model.compile(...)
    model.fit(x, y)
    model = clustering.strip_clustering(model)

Cluster a pruned model with ``preserve_sparsity=True`` to keep its zeros, and
fine-tune the stripped result with a collaborative quantization scheme
(``kopt.quantization.Default8BitClusterPreserveQuantizeScheme``) to keep both
through quantization-aware training.
"""

from kopt.clustering.api import cluster_scope
from kopt.clustering.api import cluster_weights
from kopt.clustering.api import strip_clustering
from kopt.clustering.callbacks import ClusteringSummaries
from kopt.clustering.centroids import CentroidInitialization
from kopt.clustering.clusterable import ClusterableLayer
from kopt.clustering.wrapper import ClusterWeights

__all__ = [
    "CentroidInitialization",
    "ClusterWeights",
    "ClusterableLayer",
    "ClusteringSummaries",
    "cluster_scope",
    "cluster_weights",
    "strip_clustering",
]

# Last: with this package complete, Keras can load models that use any of kopt's packages.
from kopt import registration as _registration  # noqa: E402

_registration.package_loaded(__name__)
