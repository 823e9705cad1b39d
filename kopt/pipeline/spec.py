"""One stage of a recipe: a registered technique's name and its params."""

import dataclasses

__all__ = ["TechniqueSpec"]


@dataclasses.dataclass(frozen=True)
class TechniqueSpec:
    """One optimization stage to apply after float training, in recipe order.

    Attributes:
        name: A name registered with :func:`kopt.pipeline.register_technique`.
        params: The technique's own settings, e.g. ``{"target_sparsity": 0.8}``.
    """

    name: str
    params: dict = dataclasses.field(default_factory=dict)
