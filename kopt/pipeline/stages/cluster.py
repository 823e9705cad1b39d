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

import dataclasses
from typing import ClassVar

from kopt import clustering
from kopt.pipeline.classifier_training import train_classifier
from kopt.pipeline.settings import setting
from kopt.pipeline.stages.fine_tune import FineTuneSettings
from kopt.pipeline.stages.fine_tune import FineTuningTechnique
from kopt.pipeline.stages.fine_tune import steps_per_epoch
from kopt.pipeline.techniques import register_technique

INITS = ("kmeans_plus_plus", "density_based", "linear", "random")
# Clustering fine-tunes a trained model: a tenth of the float rate unless one is given.
_CLUSTER_RATE_FACTOR = 0.1


@dataclasses.dataclass(frozen=True)
class ClusterSettings(FineTuneSettings):
    """The ``cluster`` params (see the module docstring)."""

    flag_group: ClassVar[str] = "Clustering"

    number_of_clusters: int = setting(
        None, kind=int, low=2, example=16, flag="cluster", adds_stage=True,
        help="Cluster each clusterable layer's weights into this many shared values, e.g. 16.",
        search=[8, 16, 32], search_needs_budget=True,
    )  # fmt: skip
    init: str = setting("kmeans_plus_plus", kind=str, choices=INITS, flag="cluster_init",
                        help="Where --cluster centroids start.")  # fmt: skip
    cluster_per_channel: bool = setting(
        False, kind=bool, flag="cluster_per_channel",
        help="With --cluster: that many values per output channel instead of per layer.",
    )  # fmt: skip
    preserve_sparsity: bool = setting(False, kind=bool)


@register_technique
class Cluster(FineTuningTechnique):
    """Clusters every clusterable layer, fine-tunes, strips to a plain model."""

    name = "cluster"
    settings = ClusterSettings
    rate_factor = _CLUSTER_RATE_FACTOR

    def with_earlier_stages(self, params, earlier):
        # Clustering a pruned model keeps its zeros as one of the clusters.
        return {**params, "preserve_sparsity": any(spec.name == "prune" for spec in earlier)}

    def apply(self, model, context, params):
        config = self.training_config(context.recipe, params)
        values = self.values(params)
        clustered = clustering.cluster_weights(
            model,
            values.number_of_clusters,
            cluster_centroids_init=values.init.upper(),
            preserve_sparsity=values.preserve_sparsity,
            cluster_per_channel=values.cluster_per_channel,
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
