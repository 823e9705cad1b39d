"""A :class:`TrainingConfig` turned into the Keras objects that train with it."""

import keras

from kopt.training.config import TrainingConfig
from kopt.training.optimizers import get_optimizer
from kopt.training.schedules import learning_rate_schedule

__all__ = ["training_objects"]


def training_objects(
    config: TrainingConfig, *, steps_per_epoch: int, early_stopping_from_epoch: int = 0
) -> tuple[keras.optimizers.Optimizer, list[keras.callbacks.Callback]]:
    """The optimizer and callbacks for ``model.compile`` and ``model.fit``.

    Args:
        config: A :class:`kopt.training.TrainingConfig`.
        steps_per_epoch: Optimizer steps in one epoch.
        early_stopping_from_epoch: First epoch early stopping may count from
            (pruning sets the end of its sparsity ramp, so training never stops
            before the target sparsity is reached).

    Returns:
        ``(optimizer, callbacks)``. The callbacks are the schedule's (for
        ``plateau``) and ``keras.callbacks.EarlyStopping`` on ``val_loss`` that
        restores the best weights, when ``early_stopping_patience`` is set. Both
        need ``validation_data`` in ``fit``.

    Example:

    >>> from kopt.training import TrainingConfig
    >>> optimizer, callbacks = training_objects(
    ...     TrainingConfig(epochs=5, optimizer="adamw", early_stopping_patience=2), steps_per_epoch=10)
    >>> type(optimizer).__name__, [type(c).__name__ for c in callbacks]
    ('AdamW', ['EarlyStopping'])
    """
    config.validate()
    learning_rate, callbacks = learning_rate_schedule(config, steps_per_epoch=steps_per_epoch)
    optimizer = get_optimizer(
        config.optimizer, learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
    )
    if config.early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=config.early_stopping_patience,
                restore_best_weights=True,
                start_from_epoch=early_stopping_from_epoch,
            )
        )
    return optimizer, callbacks
