"""``TrainingConfig``: the settings of one training run, validated once, as plain data.

Float training and every fine-tuning stage of ``kopt-optimize`` train with one of
these; :func:`kopt.training.training_objects` turns it into the Keras optimizer,
learning-rate schedule and callbacks it names.
"""

import dataclasses
import math
from typing import Any

from kopt.errors import ConfigError
from kopt.training.batch_norm import DEFAULT_BATCHES

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
LR_SCHEDULES = ("constant", "exponential", "cosine", "plateau")
# Optimizers whose update has a momentum term that --momentum sets.
MOMENTUM_OPTIMIZERS = ("momentum", "nesterov", "rmsprop")
DEFAULT_MOMENTUM = {"momentum": 0.9, "nesterov": 0.9, "rmsprop": 0.0}


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How to train: epochs, optimizer, learning rate and its schedule, early stopping.

    Attributes:
        epochs: Training epochs, at least 1.
        learning_rate: The peak learning rate, a finite number above 0.
        optimizer: One of :data:`OPTIMIZERS`: ``"sgd"``, ``"momentum"`` (SGD with
            momentum), ``"nesterov"``, ``"adam"``, ``"adamw"`` or ``"rmsprop"``.
        momentum: Momentum in ``[0, 1)`` of ``"momentum"``, ``"nesterov"`` (default
            0.9) or ``"rmsprop"`` (default 0); ``None`` takes the default. Giving it
            for another optimizer is an error.
        weight_decay: Decoupled weight decay (every Keras 3 optimizer applies it
            apart from the gradient), ``>= 0``; ``None`` is Keras' default: none,
            except 0.004 for ``"adamw"``.
        lr_schedule: One of :data:`LR_SCHEDULES`: ``"constant"``, ``"exponential"``
            (down to a hundredth of the rate by the last step), ``"cosine"`` (down
            to 0) or ``"plateau"`` (a fifth of the rate each time the validation
            loss stops improving for an epoch).
        warmup_epochs: Epochs of linear warm-up from near 0 to ``learning_rate``
            before the schedule starts; fewer than ``epochs``.
        early_stopping_patience: Stop when the validation loss has not improved
            for this many epochs and keep the best weights; ``None`` never stops.
        batch_norm_batches: After training, set every BatchNormalization's moving
            statistics to their average over this many training batches
            (:func:`kopt.training.reestimate_batch_norm`); 0 keeps the moving
            averages training left.

    Example:

    >>> config = TrainingConfig(epochs=3, optimizer="nesterov").validate()
    >>> config.resolved_momentum()
    0.9
    """

    epochs: int = 10
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float | None = None
    weight_decay: float | None = None
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    early_stopping_patience: int | None = None
    batch_norm_batches: int = DEFAULT_BATCHES

    def validate(self, prefix: str = "") -> "TrainingConfig":
        """Returns ``self``, or raises :class:`kopt.ConfigError` naming ``prefix + key``.

        Args:
            prefix: Put before every key in errors, e.g. ``"prune."`` for a stage.
        """
        require_int(prefix + "epochs", self.epochs, minimum=1)
        require_number(prefix + "learning_rate", self.learning_rate, above=0)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(prefix + "optimizer", self.optimizer, f"must be one of {', '.join(OPTIMIZERS)}")
        if self.momentum is not None:
            require_number(prefix + "momentum", self.momentum, at_least=0)
            if self.momentum >= 1:
                raise ConfigError(prefix + "momentum", self.momentum, "must be below 1, e.g. 0.9")
            if self.optimizer not in MOMENTUM_OPTIMIZERS:
                raise ConfigError(
                    prefix + "momentum",
                    self.momentum,
                    f"only {', '.join(MOMENTUM_OPTIMIZERS)} have momentum, not optimizer={self.optimizer}",
                )
        if self.weight_decay is not None:
            require_number(prefix + "weight_decay", self.weight_decay, at_least=0)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(prefix + "lr_schedule", self.lr_schedule, f"must be one of {', '.join(LR_SCHEDULES)}")
        require_int(prefix + "warmup_epochs", self.warmup_epochs, minimum=0)
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise ConfigError(
                prefix + "warmup_epochs", self.warmup_epochs, f"must be fewer than the {self.epochs} training epochs"
            )
        if self.early_stopping_patience is not None:
            require_int(prefix + "early_stopping_patience", self.early_stopping_patience, minimum=0)
        require_int(prefix + "batch_norm_batches", self.batch_norm_batches, minimum=0)
        return self

    @property
    def needs_validation(self) -> bool:
        """Whether training reads a validation set (plateau schedule, early stopping)."""
        return self.lr_schedule == "plateau" or self.early_stopping_patience is not None

    def resolved_momentum(self) -> float | None:
        """The momentum the optimizer gets: the given one or the optimizer's default."""
        if self.momentum is not None:
            return float(self.momentum)
        return DEFAULT_MOMENTUM.get(self.optimizer)

    def to_dict(self) -> dict[str, Any]:
        """Returns the settings as JSON-friendly plain data."""
        return dataclasses.asdict(self)


# Counts (epochs, batch size, seed...) go to TensorFlow as 32-bit integers; larger
# ones would overflow deep inside it, so they are refused here.
MAX_INT = 2**31 - 1


def require_int(key, value, *, minimum, maximum=MAX_INT):
    """Raises :class:`kopt.ConfigError` unless ``value`` is an integer in ``[minimum, maximum]``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(key, value, "must be an integer")
    if value < minimum:
        raise ConfigError(key, value, f"must be at least {minimum}")
    if value > maximum:
        raise ConfigError(key, value, f"must be at most {maximum}")


def require_number(key, value, *, above=None, at_least=None):
    """Raises :class:`kopt.ConfigError` unless ``value`` is a finite number in range."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(key, value, "must be a finite number")
    if above is not None and value <= above:
        raise ConfigError(key, value, f"must be a finite number above {above}")
    if at_least is not None and value < at_least:
        raise ConfigError(key, value, f"must be at least {at_least}")
