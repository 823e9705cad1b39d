"""Settings shared by every technique that fine-tunes: its training config, steps.

A fine-tuning stage's settings dataclass extends :class:`FineTuneSettings`, so
its params may hold any of :data:`TRAINING_KEYS`. ``epochs``
defaults to 1 and ``learning_rate`` to the float rate times the stage's
``rate_factor``; ``optimizer``, ``momentum``, ``weight_decay``,
``lr_schedule`` and ``early_stopping_patience`` default to the recipe's, and
``warmup_epochs`` to 0 (warm-up is for training from scratch).
"""

import dataclasses
import math

from kopt.errors import ConfigError
from kopt.pipeline.settings import param_keys
from kopt.pipeline.settings import setting
from kopt.pipeline.techniques import Technique
from kopt.training.config import TrainingConfig

# The --help group of the fine-tuning flags every technique shares.
FINE_TUNING = "Fine-tuning of each technique"


@dataclasses.dataclass(frozen=True)
class FineTuneSettings:
    """The training params of a fine-tuning stage; :class:`kopt.training.TrainingConfig` checks them."""

    epochs: int = setting(
        1, kind=int, checked=False, flag="finetune_epochs", flag_default=4, group=FINE_TUNING,
        help="Fine-tuning epochs of each technique.",
    )  # fmt: skip
    learning_rate: float | None = setting(
        None, kind=float, checked=False, flag="finetune_learning_rate", group=FINE_TUNING,
        help="Fine-tuning learning rate; defaults to --learning_rate (a tenth of it for --qat).",
    )  # fmt: skip
    optimizer: str | None = setting(None, kind=str, checked=False)
    momentum: float | None = setting(None, kind=float, checked=False)
    weight_decay: float | None = setting(None, kind=float, checked=False)
    lr_schedule: str | None = setting(None, kind=str, checked=False)
    warmup_epochs: int | None = setting(None, kind=int, checked=False)
    early_stopping_patience: int | None = setting(None, kind=int, checked=False)


TRAINING_KEYS = param_keys(FineTuneSettings)
# Inherited from the recipe when a stage does not set them.
_INHERITED = ("optimizer", "momentum", "weight_decay", "lr_schedule", "early_stopping_patience", "batch_norm_batches")


class FineTuningTechnique(Technique):
    """A technique that trains: its ``settings`` extend :class:`FineTuneSettings`.

    Attributes:
        rate_factor: The default fine-tuning rate as a multiple of the float rate.
    """

    rate_factor = 1.0
    settings = FineTuneSettings

    def check(self, params):
        check_fine_tune(self.name, params)
        super().check(params)

    def check_recipe(self, recipe, params):
        super().check_recipe(recipe, params)
        self.training_config(recipe, params)

    def training_config(self, recipe, params):
        """The stage's validated :class:`kopt.training.TrainingConfig`.

        Raises:
            ConfigError: Naming ``<stage>.<key>``.
        """
        return stage_training_config(recipe, self.name, params, rate_factor=self.rate_factor)


def stage_training_config(recipe, technique, params, *, rate_factor=1.0, warmup=False):
    """A stage's :class:`kopt.training.TrainingConfig`: its params over the recipe's.

    Args:
        recipe: The :class:`kopt.pipeline.Recipe`.
        technique: The stage's name, for errors (``"prune.epochs"``).
        params: The stage's params.
        rate_factor: Default rate as a multiple of ``recipe.learning_rate``.
        warmup: Whether the stage inherits the recipe's ``warmup_epochs``.
    """
    inherited = {key: getattr(recipe, key) for key in _INHERITED}
    if "optimizer" in params:
        inherited.pop("momentum")  # The recipe's momentum belongs to the recipe's optimizer.
    settings = {
        **inherited,
        "epochs": FineTuneSettings.epochs,
        "learning_rate": recipe.learning_rate * rate_factor,
        "warmup_epochs": recipe.warmup_epochs if warmup else 0,
    }
    settings.update({key: params[key] for key in TRAINING_KEYS if params.get(key) is not None})
    if params.get("early_stopping_patience", 0) is None:
        settings["early_stopping_patience"] = None
    config = TrainingConfig(**settings)
    return config.validate(prefix=f"{technique}.")


def check_fine_tune(technique, params):
    """Validates the training params a stage gives, before any recipe is known."""
    epochs = params.get("epochs", FineTuneSettings.epochs)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ConfigError(f"{technique}.epochs", epochs, "fine-tuning needs an integer of at least 1 epoch")
    given = {key: params[key] for key in TRAINING_KEYS if params.get(key) is not None}
    checked = dataclasses.replace(TrainingConfig(epochs=epochs), **given)
    if "momentum" in given and "optimizer" not in given:
        checked = dataclasses.replace(checked, optimizer="momentum")  # Checked against the recipe later.
    checked.validate(prefix=f"{technique}.")


def steps_per_epoch(context):
    """Training steps in one epoch of ``context.train``."""
    cardinality = int(context.train.cardinality())
    if cardinality > 0:
        return cardinality
    if context.info.train_examples:
        return math.ceil(context.info.train_examples / context.recipe.batch_size)
    raise ValueError(
        f"Cannot tell how many steps one epoch of {context.info.name!r} has; the dataset's size is unknown."
    )
