"""Optimizers by name: each of kopt's optimizer settings is one Keras built-in.

==============  ==============================================================
name            Keras optimizer
==============  ==============================================================
``sgd``         ``keras.optimizers.SGD``
``momentum``    ``keras.optimizers.SGD(momentum=0.9)``
``nesterov``    ``keras.optimizers.SGD(momentum=0.9, nesterov=True)``
``adam``        ``keras.optimizers.Adam``
``adamw``       ``keras.optimizers.AdamW`` (decoupled weight decay, default 0.004)
``rmsprop``     ``keras.optimizers.RMSprop``
==============  ==============================================================
"""

import keras

from kopt.training.config import TrainingConfig

__all__ = ["get_optimizer"]


def get_optimizer(
    name: str,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
    *,
    momentum: float | None = None,
    weight_decay: float | None = None,
) -> keras.optimizers.Optimizer:
    """Returns the Keras optimizer ``name`` stands for.

    Args:
        name: One of :data:`kopt.training.OPTIMIZERS`.
        learning_rate: A float or a ``keras.optimizers.schedules.LearningRateSchedule``.
        momentum: For ``"momentum"``, ``"nesterov"`` and ``"rmsprop"``; ``None``
            takes 0.9 for the first two and 0 for RMSprop.
        weight_decay: Decoupled weight decay; ``None`` keeps the Keras default.

    Returns:
        A new ``keras.optimizers.Optimizer``.

    Raises:
        ConfigError: For an unknown name or a momentum the optimizer lacks.

    Example:

    >>> optimizer = get_optimizer("nesterov", 0.01)
    >>> type(optimizer).__name__, optimizer.nesterov, float(optimizer.momentum)
    ('SGD', True, 0.9)
    """
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        learning_rate = float(learning_rate)
        check_rate = learning_rate
    else:
        check_rate = 1.0  # A schedule validates its own values.
    config = TrainingConfig(
        epochs=1, learning_rate=check_rate, optimizer=name, momentum=momentum, weight_decay=weight_decay
    ).validate()
    kwargs = {"learning_rate": learning_rate}
    if weight_decay is not None:
        kwargs["weight_decay"] = float(weight_decay)
    if name in ("momentum", "nesterov", "rmsprop"):
        kwargs["momentum"] = config.resolved_momentum()
    if name != "rmsprop" and "momentum" in kwargs:
        kwargs["nesterov"] = name == "nesterov"
    return _CLASSES[name](**kwargs)


_CLASSES = {
    "sgd": keras.optimizers.SGD,
    "momentum": keras.optimizers.SGD,
    "nesterov": keras.optimizers.SGD,
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "rmsprop": keras.optimizers.RMSprop,
}
