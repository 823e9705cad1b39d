"""kopt's built-in technique stages; importing this package registers them.

Each module defines one :class:`kopt.pipeline.Technique`: ``prune`` (magnitude,
block and M:N pruning) and ``prune_structured`` (channel removal).
"""

from kopt.pipeline.stages.prune import Prune
from kopt.pipeline.stages.prune_structured import PruneStructured

__all__ = ["Prune", "PruneStructured"]
