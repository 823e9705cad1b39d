"""The ``prune_structured`` stage: remove whole channels, then fine-tune the smaller model.

Params (recipe keys under ``prune_structured``; flags ``--prune_structured``,
``--prune_structured_speedup``, ``--finetune_epochs``, ``--finetune_learning_rate``):

* ``fraction``: share of the output channels (filters or units) to remove from each
  Conv2D and Dense layer except the classifier, in (0, 1), lowest L1 norm first.
* ``speedup``: instead of ``fraction``, a modelled speedup above 1: channels go
  where the layers' measured milliseconds are
  (:func:`kopt.pruning.latency_channel_plan`, each layer timed alone in LiteRT).
* ``epochs``, ``learning_rate`` and the other training keys of
  :mod:`kopt.pipeline.stages.fine_tune`: fine-tuning; the rate defaults to the
  float one.
"""

import dataclasses
from typing import ClassVar

from absl import logging

from kopt import pruning
from kopt.errors import ConfigError
from kopt.pipeline.classifier_training import train_classifier
from kopt.pipeline.settings import setting
from kopt.pipeline.stages.fine_tune import FineTuneSettings
from kopt.pipeline.stages.fine_tune import FineTuningTechnique
from kopt.pipeline.stages.fine_tune import steps_per_epoch
from kopt.pipeline.techniques import register_technique


@dataclasses.dataclass(frozen=True)
class PruneStructuredSettings(FineTuneSettings):
    """The ``prune_structured`` params (see the module docstring)."""

    flag_group: ClassVar[str] = "Pruning"

    fraction: float = setting(
        None, kind=float, low=0, high=1, open_bounds=True, example=0.5, flag="prune_structured", adds_stage=True,
        help="Remove this fraction of channels from each Conv2D/Dense layer, e.g. 0.5.",
        search={"min": 0.2, "max": 0.7}, search_needs_budget=True, nullable=True,
    )  # fmt: skip
    speedup: float = setting(
        None, kind=float, low=1, open_bounds=True, example=1.7, flag="prune_structured_speedup", adds_stage=True,
        help="Instead of a fraction: remove channels where the measured milliseconds are, for this modelled "
        "speedup, e.g. 1.7.",
        nullable=True,
    )  # fmt: skip


@register_technique
class PruneStructured(FineTuningTechnique):
    """Shrinks Conv2D/Dense layers by their least important channels and fine-tunes."""

    name = "prune_structured"
    settings = PruneStructuredSettings

    def check(self, params):
        super().check(params)
        fraction, speedup = params.get("fraction"), params.get("speedup")
        if (fraction is None) == (speedup is None):
            raise ConfigError(
                "prune_structured.fraction",
                fraction,
                f"give exactly one of fraction (e.g. 0.5) and speedup (e.g. 1.7); received speedup={speedup!r}",
            )

    def apply(self, model, context, params):
        config = self.training_config(context.recipe, params)
        key = "fraction" if params.get("fraction") is not None else "speedup"
        try:
            if key == "fraction":
                smaller = pruning.prune_channels(model, params["fraction"])
            else:
                plan = pruning.latency_channel_plan(model, params["speedup"], log=logging.info)
                smaller = pruning.apply_channel_plan(model, plan)
        except ValueError as err:  # The model has a layer or topology it cannot shrink, or too little to remove.
            raise ConfigError(f"prune_structured.{key}", params[key], str(err)) from err
        train_classifier(
            smaller,
            context.train,
            config=config,
            validation=context.validation,
            steps_per_epoch=steps_per_epoch(context),
        )
        return smaller
