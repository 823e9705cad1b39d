"""kopt's built-in technique stages; importing this package registers them.

Each module defines one :class:`kopt.pipeline.Technique`: ``prune`` (magnitude,
block and M:N pruning), ``prune_structured`` (channel removal), ``cluster``
(weight clustering), ``distill`` (knowledge distillation into a small
student), ``qat``
(quantization-aware training), ``ptq`` (post-training quantization) and ``auto``
(accuracy-aware compression under a budget).
"""

from kopt.pipeline.stages.auto import Auto
from kopt.pipeline.stages.cluster import Cluster
from kopt.pipeline.stages.distill import Distill
from kopt.pipeline.stages.prune import Prune
from kopt.pipeline.stages.prune_structured import PruneStructured
from kopt.pipeline.stages.quantize import PostTrainingQuantization
from kopt.pipeline.stages.quantize import QuantizationAwareTraining

__all__ = [
    "Auto",
    "Cluster",
    "Distill",
    "PostTrainingQuantization",
    "Prune",
    "PruneStructured",
    "QuantizationAwareTraining",
]
