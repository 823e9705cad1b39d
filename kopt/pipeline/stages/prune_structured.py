"""The ``prune_structured`` stage: remove whole channels, then fine-tune the smaller model.

Params (recipe keys under ``prune_structured``; flags ``--prune_structured``,
``--finetune_epochs``, ``--finetune_learning_rate``):

* ``fraction``: share of the output channels (filters or units) to remove from each
  Conv2D and Dense layer except the classifier, in (0, 1), lowest L1 norm first.
* ``epochs``, ``learning_rate`` and the other training keys of
  :mod:`kopt.pipeline.stages.fine_tune`: fine-tuning; the rate defaults to the
  float one.
"""

from kopt import pruning
from kopt.errors import ConfigError
from kopt.pipeline.recipe import require_fraction
from kopt.pipeline.stages.fine_tune import FineTuningTechnique
from kopt.pipeline.stages.fine_tune import check_fine_tune
from kopt.pipeline.stages.fine_tune import steps_per_epoch
from kopt.pipeline.techniques import register_technique
from kopt.pipeline.training import train_classifier


@register_technique
class PruneStructured(FineTuningTechnique):
    """Shrinks Conv2D/Dense layers by their least important channels and fine-tunes."""

    name = "prune_structured"
    own_param_keys = ("fraction",)

    def check(self, params):
        check_fine_tune(self.name, params)
        require_fraction("prune_structured.fraction", params.get("fraction"), example=0.5)

    def apply(self, model, context, params):
        config = self.training_config(context.recipe, params)
        try:
            smaller = pruning.prune_channels(model, params["fraction"])
        except ValueError as err:  # The model has a layer or topology it cannot shrink.
            raise ConfigError("prune_structured.fraction", params["fraction"], str(err)) from err
        train_classifier(
            smaller,
            context.train,
            config=config,
            validation=context.validation,
            steps_per_epoch=steps_per_epoch(context),
        )
        return smaller
