"""Settings shared by every technique that fine-tunes: epochs, learning rate, steps."""

import math

from kopt.errors import ConfigError
from kopt.pipeline.recipe import require_positive_number


def check_fine_tune(technique, params):
    """Validates ``params["epochs"]`` and ``params["learning_rate"]`` of a technique."""
    epochs = params.get("epochs", 1)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ConfigError(f"{technique}.epochs", epochs, "fine-tuning needs an integer of at least 1 epoch")
    learning_rate = params.get("learning_rate")
    if learning_rate is not None:
        require_positive_number(f"{technique}.learning_rate", learning_rate)


def fine_tune_settings(context, params):
    """Returns ``(epochs, learning_rate)``; the rate defaults to the float training one."""
    learning_rate = params.get("learning_rate")
    return params.get("epochs", 1), context.recipe.learning_rate if learning_rate is None else learning_rate


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
