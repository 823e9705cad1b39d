"""Pruning schedules: when to update the masks, and to which sparsity.

A schedule is a plain callable ``step -> (should_prune, sparsity)`` built with
``keras.ops``, so it runs inside a compiled training step. ``step`` is the
wrapper's ``pruning_step``: the number of training batches the wrapper has seen,
counted from 0. Masks are recomputed only on steps where ``should_prune`` is true,
every ``frequency`` steps from ``begin_step`` up to ``end_step``.

The names, arguments and meanings are those of ``tfmot.sparsity.keras``, with one
deliberate difference: a schedule with an ``end_step`` also prunes *at*
``end_step`` even when ``end_step - begin_step`` is not a multiple of
``frequency``, so the final sparsity is always reached.

Example:

>>> schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100, frequency=10)
>>> should_prune, sparsity = schedule(100)
>>> bool(should_prune), round(float(sparsity), 3)
(True, 0.8)
"""

import abc
import numbers
import re
from typing import Any

import keras
from keras import ops

__all__ = ["ConstantSparsity", "PolynomialDecay", "PruningSchedule", "get"]


class PruningSchedule(abc.ABC):
    """Base class of pruning schedules; subclass it for a custom schedule.

    A subclass sets ``begin_step``, ``end_step`` (``-1``: never ends) and
    ``frequency``, implements ``__call__`` and ``get_config``, and is decorated
    with ``keras.saving.register_keras_serializable`` so that models using it load
    without ``custom_objects``. ``_should_prune_in_step`` is the same helper tfmot
    schedules call, so tfmot custom schedules port unchanged.

    Example:

    >>> @keras.saving.register_keras_serializable(package="my_schedules")
    ... class Every10Steps(PruningSchedule):
    ...     begin_step, end_step, frequency = 0, -1, 10
    ...     def __call__(self, step):
    ...         return (self._should_prune_in_step(step, 0, -1, 10),
    ...                 ops.convert_to_tensor(0.5, "float32"))
    ...     def get_config(self):
    ...         return {}
    >>> bool(Every10Steps()(20)[0])
    True
    """

    begin_step = 0
    end_step = -1
    frequency = 1

    @abc.abstractmethod
    def __call__(self, step: Any) -> tuple[Any, Any]:
        """Returns ``(should_prune, sparsity)`` for ``step``.

        Args:
            step: Integer scalar (Python int or tensor): the pruning step.

        Returns:
            A pair of scalar tensors: ``should_prune`` (bool), whether masks are
            recomputed at this step, and ``sparsity`` (float32), the fraction of
            weights to zero when they are.
        """

    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments as a JSON-serializable dict."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "PruningSchedule":
        """Rebuilds the schedule from ``get_config()`` output."""
        return cls(**config)

    @staticmethod
    def _should_prune_in_step(step, begin_step, end_step, frequency):
        """True on ``begin_step + k * frequency`` within the range, and at ``end_step``."""
        step = ops.cast(step, "int64")
        in_range = ops.greater_equal(step, begin_step)
        if end_step >= 0:
            in_range = ops.logical_and(in_range, ops.less_equal(step, end_step))
        is_turn = ops.equal(ops.mod(step - begin_step, frequency), 0)
        if end_step >= 0:
            # Reaching the final sparsity must not depend on end_step being a
            # multiple of frequency away from begin_step.
            is_turn = ops.logical_or(is_turn, ops.equal(step, end_step))
        return ops.logical_and(in_range, is_turn)

    def __repr__(self):
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="kopt")
class ConstantSparsity(PruningSchedule):
    """Prunes to one fixed sparsity every ``frequency`` steps.

    ``sparsity(step) = target_sparsity`` for ``begin_step <= step`` (and
    ``step <= end_step`` unless ``end_step == -1``); masks update every
    ``frequency`` steps in that range.

    Args:
        target_sparsity: Fraction of weights to zero, in ``[0, 1)``.
        begin_step: First step at which masks are computed (``>= 0``).
        end_step: Last step at which masks are computed, or ``-1`` to keep
            updating them for the whole training.
        frequency: Steps between mask updates (``>= 1``).

    Raises:
        ValueError: If an argument is out of range; the message names it.

    Example:

    >>> schedule = ConstantSparsity(0.5, begin_step=0, frequency=100)
    >>> [bool(schedule(step)[0]) for step in (0, 50, 100)]
    [True, False, True]
    """

    def __init__(self, target_sparsity: float = 0.5, begin_step: int = 0, end_step: int = -1, frequency: int = 100):
        self.target_sparsity = _check_sparsity("target_sparsity", target_sparsity)
        self.begin_step, self.end_step, self.frequency = _check_steps(
            begin_step, end_step, frequency, allow_open_end=True
        )

    def __call__(self, step: Any) -> tuple[Any, Any]:
        should_prune = self._should_prune_in_step(step, self.begin_step, self.end_step, self.frequency)
        return should_prune, ops.convert_to_tensor(self.target_sparsity, "float32")

    def get_config(self) -> dict[str, Any]:
        return {
            "target_sparsity": self.target_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
        }


@keras.saving.register_keras_serializable(package="kopt")
class PolynomialDecay(PruningSchedule):
    """Gradual pruning of Zhu & Gupta (2017), "To prune, or not to prune".

    With ``p = clip((step - begin_step) / (end_step - begin_step), 0, 1)``::

        sparsity(step) = final_sparsity
                         + (initial_sparsity - final_sparsity) * (1 - p) ** power

    so sparsity rises fast at first, while there are many redundant weights, and
    slowly near the end. Masks update every ``frequency`` steps from
    ``begin_step`` and at ``end_step``, where ``final_sparsity`` is reached.

    Args:
        initial_sparsity: Sparsity at ``begin_step``, in ``[0, 1)``.
        final_sparsity: Sparsity at ``end_step`` and after, in ``[0, 1)``.
        begin_step: First step at which masks are computed (``>= 0``).
        end_step: Last step at which masks are computed (``>= begin_step``).
        power: Exponent of the decay (``> 0``); 3 is the paper's choice.
        frequency: Steps between mask updates (``>= 1``).

    Raises:
        ValueError: If an argument is out of range; the message names it.

    Example:

    >>> schedule = PolynomialDecay(0.0, 0.9, begin_step=0, end_step=100)
    >>> round(float(schedule(50)[1]), 4)
    0.7875
    """

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        power: float = 3,
        frequency: int = 100,
    ):
        self.initial_sparsity = _check_sparsity("initial_sparsity", initial_sparsity)
        self.final_sparsity = _check_sparsity("final_sparsity", final_sparsity)
        if isinstance(power, bool) or not isinstance(power, numbers.Real) or not power > 0:
            raise ValueError(f"`power` must be a number greater than 0. Received: power={power!r}")
        self.power = power
        self.begin_step, self.end_step, self.frequency = _check_steps(
            begin_step, end_step, frequency, allow_open_end=False
        )

    def __call__(self, step: Any) -> tuple[Any, Any]:
        step = ops.cast(step, "int64")
        duration = max(self.end_step - self.begin_step, 1)
        progress = ops.cast(step - self.begin_step, "float32") / float(duration)
        progress = ops.clip(progress, 0.0, 1.0)
        sparsity = self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * ops.power(
            1.0 - progress, float(self.power)
        )
        should_prune = self._should_prune_in_step(step, self.begin_step, self.end_step, self.frequency)
        return should_prune, ops.cast(sparsity, "float32")

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_sparsity": self.initial_sparsity,
            "final_sparsity": self.final_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "power": self.power,
            "frequency": self.frequency,
        }


def get(identifier: "PruningSchedule | str | dict[str, Any] | None", **kwargs) -> "PruningSchedule | None":
    """Resolves a schedule from an instance, a name or a config dict.

    Names are looked up among classes registered with
    ``keras.saving.register_keras_serializable``: ``"polynomial_decay"``,
    ``"PolynomialDecay"`` and ``"kopt>PolynomialDecay"`` all name kopt's class, and
    ``"my_package>MySchedule"`` names a custom one. No hand-kept table is involved.

    Args:
        identifier: ``None``, a :class:`PruningSchedule`, a name, or a dict: either
            ``{"class_name": name, "config": {...}}`` or the output of
            ``keras.saving.serialize_keras_object``.
        **kwargs: Constructor arguments, only with a name.

    Returns:
        A :class:`PruningSchedule`, or ``None`` for ``None``.

    Raises:
        ValueError: If the identifier names no schedule, or the arguments do not
            fit the schedule.

    Example:

    >>> get("polynomial_decay", initial_sparsity=0.0, final_sparsity=0.5,
    ...     begin_step=0, end_step=10).final_sparsity
    0.5
    """
    if kwargs and not isinstance(identifier, str):
        raise ValueError(
            "Keyword arguments are accepted only with a schedule name. "
            f"Received: identifier={identifier!r}, kwargs={sorted(kwargs)}"
        )
    if identifier is None or isinstance(identifier, PruningSchedule):
        return identifier
    if isinstance(identifier, str):
        return _build(identifier, kwargs)
    if isinstance(identifier, dict) and "class_name" in identifier:
        if "module" in identifier or "registered_name" in identifier:
            schedule = keras.saving.deserialize_keras_object(identifier)
        else:
            schedule = _build(identifier["class_name"], identifier.get("config") or {})
        if not isinstance(schedule, PruningSchedule):
            raise ValueError(f"The config does not describe a PruningSchedule. Received: identifier={identifier!r}")
        return schedule
    raise ValueError(
        f"A pruning schedule must be a PruningSchedule, a name or a config dict. Received: identifier={identifier!r}"
    )


def _build(name, config):
    cls = _lookup(name)
    try:
        return cls(**config)
    except TypeError as err:
        raise ValueError(f"Cannot build schedule {name!r} from arguments {sorted(config)}: {err}") from err


def _lookup(name):
    candidates = [name] if ">" in name else [f"kopt>{name}", f"kopt>{_camel_case(name)}"]
    for candidate in candidates:
        cls = keras.saving.get_registered_object(candidate)
        if isinstance(cls, type) and issubclass(cls, PruningSchedule):
            return cls
    raise ValueError(
        "Unknown pruning schedule; use 'constant_sparsity', 'polynomial_decay' or the "
        f"registered name ('package>ClassName') of a custom schedule. Received: identifier={name!r}"
    )


def _camel_case(name):
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-\s]+", name) if part)


def _check_sparsity(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1). Received: {name}={value!r}")
    return float(value)


def _check_steps(begin_step, end_step, frequency, *, allow_open_end):
    for name, value in (("begin_step", begin_step), ("end_step", end_step), ("frequency", frequency)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"`{name}` must be an integer. Received: {name}={value!r}")
    if begin_step < 0:
        raise ValueError(f"`begin_step` must be >= 0. Received: begin_step={begin_step}")
    if allow_open_end and end_step == -1:
        pass
    elif end_step < begin_step:
        open_end = " or -1 (never ends)" if allow_open_end else ""
        raise ValueError(f"`end_step` must be >= begin_step ({begin_step}){open_end}. Received: end_step={end_step}")
    if frequency < 1:
        raise ValueError(f"`frequency` must be >= 1. Received: frequency={frequency}")
    return int(begin_step), int(end_step), int(frequency)
