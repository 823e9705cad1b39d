"""The ``prune_structured`` stage: remove whole channels, then fine-tune the smaller model.

Params (recipe keys under ``prune_structured``; flags ``--prune_structured``,
``--prune_structured_speedup``, ``--finetune_epochs``, ``--finetune_learning_rate``):

* ``fraction``: share of the output channels (filters or units) to remove from each
  Conv2D and Dense layer except the classifier, in (0, 1), lowest L1 norm first.
* ``speedup``: instead of ``fraction``, a modelled speedup above 1: channels go
  where the layers' measured milliseconds are
  (:func:`kopt.pruning.latency_channel_plan`, each layer timed alone in LiteRT).
* ``keep_layers``: with ``fraction``, names of Conv/Dense (or recurrent, or
  attention) layers whose channels stay, with every layer that shares their
  channel set (flag ``--prune_structured_keep``, comma-separated): the way out
  when a layer structured pruning cannot slice (a custom layer) reads them.
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
from kopt.pipeline.settings import UNLESS_NONE
from kopt.pipeline.settings import parse_names
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
    keep_layers: list = setting(
        [], kind=list, flag="prune_structured_keep", flag_default=None, from_flags=UNLESS_NONE, parse=parse_names,
        help="With --prune_structured: comma-separated Conv/Dense layer names whose channels stay (with the layers "
        "that share them), e.g. where a custom layer that cannot be sliced reads them.",
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
        keep = params.get("keep_layers") or []
        if keep and speedup is not None:
            raise ConfigError(
                "prune_structured.keep_layers",
                list(keep),
                "is for a fraction (--prune_structured); a speedup plan chooses every layer from its measured "
                "milliseconds",
            )
        if not all(isinstance(name, str) and name for name in keep):
            raise ConfigError("prune_structured.keep_layers", keep, "must be a list of layer names")

    def check_model(self, model, params):
        keep = self.values(params).keep_layers
        if keep:
            try:
                _layers_to_prune(model, keep)
            except ValueError as err:
                raise ConfigError("prune_structured.keep_layers", list(keep), str(err)) from err

    def apply(self, model, context, params):
        config = self.training_config(context.recipe, params)
        key = "fraction" if params.get("fraction") is not None else "speedup"
        try:
            if key == "fraction":
                keep = self.values(params).keep_layers
                layers = _layers_to_prune(model, keep) if keep else None
                smaller = pruning.prune_channels(model, params["fraction"], layers=layers)
            else:
                plan = pruning.latency_channel_plan(model, params["speedup"], log=logging.info)
                smaller = pruning.apply_channel_plan(model, plan)
        except ValueError as err:  # The model has a layer or topology it cannot shrink, or too little to remove.
            reason = str(err)
            if "cannot slice" in reason and key == "fraction":
                reason += "; from kopt-optimize, --prune_structured_keep=NAMES keeps the named layers' channels"
            raise ConfigError(f"prune_structured.{key}", params[key], reason) from err
        train_classifier(
            smaller,
            context.train,
            config=config,
            validation=context.validation,
            steps_per_epoch=steps_per_epoch(context),
        )
        return smaller


def _layers_to_prune(model, keep):
    """The producers :func:`kopt.pruning.prune_channels` may prune: all but the channel sets ``keep`` names.

    Raises:
        ValueError: Naming a kept layer that is not in the model or produces no
            channels that can be pruned, or when nothing is left to prune.
    """
    plan = pruning.channel_plan(model, 0.0)
    names = {layer.name for layer in model.layers} | set(plan["layers"])  # nested backbones' layers too
    for name in keep:
        if name not in names:
            raise ValueError(f"layer {name!r} is not in model {model.name!r}")
        if name not in plan["layers"]:
            raise ValueError(
                f"layer {name!r} produces no channels structured pruning removes (Conv/Dense layers, recurrent "
                "units, attention heads); name the layer whose output it reads"
            )
    layers = [
        name
        for group in plan["groups"]
        if group["frozen"] is None and not set(group["layers"]) & set(keep)
        for name in group["layers"]
    ]
    if not layers:
        raise ValueError(f"keeping {sorted(keep)} leaves no channels that can be removed")
    return layers
