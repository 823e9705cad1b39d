"""absl flags for training: ``--optimizer``, ``--lr_schedule``, ``--mixed_precision``...

``kopt-optimize`` and the examples define them with :func:`define_flags` and
read them with :func:`config_from_flags`; each maps to a Keras built-in (see
:mod:`kopt.training.optimizers` and :mod:`kopt.training.schedules`).
"""

from absl import flags

from kopt.training.batch_norm import DEFAULT_BATCHES
from kopt.training.config import LR_SCHEDULES
from kopt.training.config import OPTIMIZERS
from kopt.training.config import TrainingConfig
from kopt.training.precision import PRECISIONS

__all__ = ["FLAG_NAMES", "config_from_flags", "define_flags"]

# The flags define_flags adds; each is also a kopt-optimize recipe key.
FLAG_NAMES = (
    "optimizer",
    "momentum",
    "weight_decay",
    "lr_schedule",
    "warmup_epochs",
    "early_stopping_patience",
    "batch_norm_batches",
    "mixed_precision",
    "deterministic",
)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the training flags of :data:`FLAG_NAMES` on ``flag_values``.

    Calling it again on the same ``flag_values`` does nothing. ``--epochs``,
    ``--learning_rate`` and ``--seed`` stay with each binary, which knows their
    defaults.

    Example:

    >>> from absl import flags
    >>> values = flags.FlagValues()
    >>> define_flags(values)
    >>> _ = values(["prog", "--optimizer=adamw", "--lr_schedule=cosine"])
    >>> config_from_flags(epochs=3, learning_rate=0.01, flag_values=values).optimizer
    'adamw'
    """
    if "optimizer" in flag_values:
        return
    define = dict(flag_values=flag_values)
    flags.DEFINE_enum(
        "optimizer",
        "adam",
        list(OPTIMIZERS),
        "Keras optimizer: SGD (plain, momentum, nesterov), Adam, AdamW or RMSprop.",
        **define,
    )
    flags.DEFINE_float(
        "momentum", None, "Momentum of --optimizer=momentum|nesterov (default 0.9) or rmsprop (default 0).", **define
    )
    flags.DEFINE_float(
        "weight_decay", None, "Decoupled weight decay of the optimizer (default: none; 0.004 for adamw).", **define
    )
    flags.DEFINE_enum(
        "lr_schedule",
        "constant",
        list(LR_SCHEDULES),
        "Learning rate over training: constant, exponential or cosine decay, or plateau "
        "(a fifth of it whenever the validation loss stops improving).",
        **define,
    )
    flags.DEFINE_integer("warmup_epochs", 0, "Epochs of linear learning-rate warm-up before the schedule.", **define)
    flags.DEFINE_integer(
        "early_stopping_patience",
        None,
        "Stop training when the validation loss has not improved for this many epochs; keep the best weights.",
        **define,
    )
    flags.DEFINE_integer(
        "batch_norm_batches",
        DEFAULT_BATCHES,
        "After each training, re-estimate BatchNormalization's moving statistics on this many training batches "
        "(0: keep the moving averages).",
        **define,
    )
    flags.DEFINE_enum(
        "mixed_precision",
        "none",
        list(PRECISIONS),
        "Keras dtype policy for training; the exported TFLite file stays float32 (or integer).",
        **define,
    )
    flags.DEFINE_bool(
        "deterministic", True, "Make TensorFlow's ops deterministic, so a seed repeats a run exactly.", **define
    )


def config_from_flags(
    *, epochs: int, learning_rate: float, flag_values: flags.FlagValues = flags.FLAGS
) -> TrainingConfig:
    """Returns the :class:`kopt.training.TrainingConfig` of the parsed flags.

    Args:
        epochs: The binary's epochs.
        learning_rate: The binary's peak learning rate.
        flag_values: Where :func:`define_flags` defined the flags.

    Raises:
        ConfigError: For inconsistent settings, naming the flag.
    """
    return TrainingConfig(
        epochs=epochs,
        learning_rate=learning_rate,
        optimizer=flag_values.optimizer,
        momentum=flag_values.momentum,
        weight_decay=flag_values.weight_decay,
        lr_schedule=flag_values.lr_schedule,
        warmup_epochs=flag_values.warmup_epochs,
        early_stopping_patience=flag_values.early_stopping_patience,
        batch_norm_batches=flag_values.batch_norm_batches,
    ).validate()
