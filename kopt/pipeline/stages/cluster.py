"""The ``cluster`` stage: weight clustering with fine-tuning.

Params (recipe keys under ``cluster``; flags ``--cluster``, ``--cluster_init``,
``--cluster_per_channel``, ``--finetune_epochs``, ``--finetune_learning_rate``):

* ``number_of_clusters``: distinct values per weight (per output channel with
  ``cluster_per_channel``), at least 2, e.g. 16.
* ``init``: ``"kmeans_plus_plus"`` (default), ``"density_based"``, ``"linear"``
  or ``"random"``: where centroids start (:class:`kopt.clustering.CentroidInitialization`).
* ``cluster_per_channel``: centroids per output channel.
* ``preserve_sparsity``: keep the zeros of an earlier pruning stage; zero counts
  as one of the clusters. ``kopt-optimize`` sets it when ``--prune`` is given.
* ``epochs``, ``learning_rate`` and the other training keys of
  :mod:`kopt.pipeline.stages.fine_tune`: fine-tuning of the clustered model;
  the rate defaults to a tenth of the float one, since clustering starts from
  trained weights and only moves the shared values.
"""

from kopt import clustering
from kopt.errors import ConfigError
from kopt.pipeline.stages.fine_tune import FineTuningTechnique
from kopt.pipeline.stages.fine_tune import check_fine_tune
from kopt.pipeline.stages.fine_tune import steps_per_epoch
from kopt.pipeline.techniques import register_technique
from kopt.pipeline.training import train_classifier

INITS = ("kmeans_plus_plus", "density_based", "linear", "random")
# Clustering fine-tunes a trained model: a tenth of the float rate unless one is given.
_CLUSTER_RATE_FACTOR = 0.1


@register_technique
class Cluster(FineTuningTechnique):
    """Clusters every clusterable layer, fine-tunes, strips to a plain model."""

    name = "cluster"
    own_param_keys = ("number_of_clusters", "init", "cluster_per_channel", "preserve_sparsity")
    rate_factor = _CLUSTER_RATE_FACTOR

    def check(self, params):
        check_fine_tune(self.name, params)
        count = params.get("number_of_clusters")
        if not isinstance(count, int) or isinstance(count, bool) or count < 2:
            raise ConfigError("cluster.number_of_clusters", count, "must be an integer of at least 2, e.g. 16")
        init = params.get("init", "kmeans_plus_plus")
        if init not in INITS:
            raise ConfigError("cluster.init", init, f"must be one of {', '.join(INITS)}")
        for key in ("cluster_per_channel", "preserve_sparsity"):
            value = params.get(key, False)
            if not isinstance(value, bool):
                raise ConfigError(f"cluster.{key}", value, "must be true or false")

    def apply(self, model, context, params):
        config = self.training_config(context.recipe, params)
        clustered = clustering.cluster_weights(
            model,
            params["number_of_clusters"],
            cluster_centroids_init=params.get("init", "kmeans_plus_plus").upper(),
            preserve_sparsity=params.get("preserve_sparsity", False),
            cluster_per_channel=params.get("cluster_per_channel", False),
        )
        train_classifier(
            clustered,
            context.train,
            config=config,
            validation=context.validation,
            steps_per_epoch=steps_per_epoch(context),
        )
        return clustered

    def strip(self, model):
        return clustering.strip_clustering(model)
