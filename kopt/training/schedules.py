"""Learning-rate schedules by name, built from Keras' own, plus a linear warm-up.

==================  =========================================================
``lr_schedule``     what the optimizer gets
==================  =========================================================
``constant``        the rate itself
``exponential``     ``keras.optimizers.schedules.ExponentialDecay``: ``lr *
                    0.01 ** (step / decay_steps)``, a hundredth by the end
``cosine``          ``keras.optimizers.schedules.CosineDecay`` down to 0
``plateau``         the rate, and ``keras.callbacks.ReduceLROnPlateau`` that
                    multiplies it by 0.2 whenever the validation loss has not
                    improved for an epoch
==================  =========================================================

With ``warmup_epochs``, the rate first rises linearly over that many epochs
(:class:`WarmupSchedule`, or for ``plateau`` a callback that does the same) and
the schedule then runs over the remaining steps.
"""

from typing import Any

import keras

from kopt.training.config import TrainingConfig  # noqa: F401 (the doctests use it)

__all__ = ["WarmupSchedule", "learning_rate_schedule"]

# Exponential decay ends at this fraction of the peak rate.
EXPONENTIAL_FINAL_FRACTION = 0.01
# ReduceLROnPlateau: fine-tuning runs last a few epochs, so react after one.
PLATEAU_FACTOR = 0.2
PLATEAU_PATIENCE = 1
PLATEAU_MIN_FRACTION = 1e-3


@keras.saving.register_keras_serializable(package="kopt")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up in front of another schedule (or a constant rate).

    ``lr(step) = target * (step + 1) / warmup_steps`` for ``step < warmup_steps``,
    then ``schedule(step - warmup_steps)``, where ``target`` is the schedule's
    first value. Starting at ``target / warmup_steps`` rather than 0 means the
    first step already moves the weights.

    Args:
        schedule: A ``keras.optimizers.schedules.LearningRateSchedule`` or a
            constant rate (a positive float).
        warmup_steps: Steps of warm-up, at least 1.

    Raises:
        ValueError: For a rate that is not positive or ``warmup_steps < 1``.

    Example:

    >>> schedule = WarmupSchedule(0.1, warmup_steps=4)
    >>> [round(float(schedule(step)), 3) for step in (0, 1, 3, 10)]
    [0.025, 0.05, 0.1, 0.1]
    """

    def __init__(self, schedule: keras.optimizers.schedules.LearningRateSchedule | float, warmup_steps: int):
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            if isinstance(schedule, bool) or not isinstance(schedule, (int, float)) or not schedule > 0:
                raise ValueError(
                    f"`schedule` must be a LearningRateSchedule or a positive rate. Received: schedule={schedule!r}"
                )
            schedule = float(schedule)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 1:
            raise ValueError(
                f"`warmup_steps` must be an integer of at least 1. Received: warmup_steps={warmup_steps!r}"
            )
        self.schedule = schedule
        self.warmup_steps = warmup_steps

    def _after(self, step):
        if isinstance(self.schedule, float):
            return keras.ops.convert_to_tensor(self.schedule, "float32")
        return keras.ops.cast(self.schedule(step), "float32")

    def __call__(self, step: Any) -> Any:
        step = keras.ops.cast(step, "float32")
        target = self._after(keras.ops.zeros((), "float32"))
        warming = target * (step + 1.0) / float(self.warmup_steps)
        after = self._after(keras.ops.maximum(step - float(self.warmup_steps), 0.0))
        return keras.ops.where(step < float(self.warmup_steps), warming, after)

    def get_config(self) -> dict[str, Any]:
        schedule = self.schedule
        if not isinstance(schedule, float):
            schedule = keras.saving.serialize_keras_object(schedule)
        return {"schedule": schedule, "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "WarmupSchedule":
        config = dict(config)
        if isinstance(config["schedule"], dict):
            config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


def learning_rate_schedule(
    config: TrainingConfig, *, steps_per_epoch: int
) -> tuple[float | keras.optimizers.schedules.LearningRateSchedule, list[keras.callbacks.Callback]]:
    """The learning rate (or schedule) and callbacks that ``config`` asks for.

    Args:
        config: A :class:`kopt.training.TrainingConfig`.
        steps_per_epoch: Optimizer steps in one epoch, at least 1.

    Returns:
        ``(learning_rate, callbacks)``: a float or a ``LearningRateSchedule`` for
        the optimizer, and the Keras callbacks the schedule needs (only
        ``plateau`` has any: ``ReduceLROnPlateau`` and, with warm-up, the
        warm-up callback). The plateau callbacks read ``val_loss``.

    Example:

    >>> rate, callbacks = learning_rate_schedule(
    ...     TrainingConfig(epochs=4, learning_rate=0.1, lr_schedule="cosine"), steps_per_epoch=10)
    >>> type(rate).__name__, round(float(rate(40)), 6), callbacks
    ('CosineDecay', 0.0, [])
    """
    config.validate()
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
        raise ValueError(
            f"`steps_per_epoch` must be an integer of at least 1. Received: steps_per_epoch={steps_per_epoch!r}"
        )
    rate = float(config.learning_rate)
    warmup_steps = config.warmup_epochs * steps_per_epoch
    decay_steps = max(1, (config.epochs - config.warmup_epochs) * steps_per_epoch)
    if config.lr_schedule == "plateau":
        callbacks = [
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE, min_lr=rate * PLATEAU_MIN_FRACTION
            )
        ]
        if warmup_steps:
            callbacks.insert(0, _PlateauWarmup(rate, warmup_steps))
        return rate, callbacks
    if config.lr_schedule == "constant":
        schedule = rate
    elif config.lr_schedule == "exponential":
        schedule = keras.optimizers.schedules.ExponentialDecay(
            rate, decay_steps=decay_steps, decay_rate=EXPONENTIAL_FINAL_FRACTION
        )
    else:
        schedule = keras.optimizers.schedules.CosineDecay(rate, decay_steps=decay_steps, alpha=0.0)
    if warmup_steps:
        schedule = WarmupSchedule(schedule, warmup_steps)
    return schedule, []


class _PlateauWarmup(keras.callbacks.Callback):
    """Warm-up for the plateau schedule, whose rate is a variable and not a schedule.

    Sets the rate before each of the first ``warmup_steps`` steps, then leaves it
    to ``ReduceLROnPlateau``.
    """

    def __init__(self, target, warmup_steps):
        super().__init__()
        self.target = target
        self.warmup_steps = warmup_steps
        self._step = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self._step < self.warmup_steps:
            self.model.optimizer.learning_rate = self.target * (self._step + 1) / self.warmup_steps
        self._step += 1
