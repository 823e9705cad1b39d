"""Technique settings, declared once: a frozen dataclass whose fields carry everything.

A technique's params are the fields of one frozen dataclass; each field is made
by :func:`setting`, which records the recipe key (the field name), its default,
type, bounds or choices, the ``kopt-optimize`` flag that sets it and that flag's
help, and whether the flag adds the stage. Everything else is read from that
declaration: the technique's ``param_keys``, its range and choice checks
(:func:`check_params`), its defaults (:func:`read`), the default search space
(:func:`search_space`) and, in :mod:`kopt.cli.technique_flags`, the absl flags
and the flag -> recipe key tables. Adding a setting to a technique is adding
one field to its dataclass.

Example:

>>> import dataclasses
>>> @dataclasses.dataclass(frozen=True)
... class Blur:
...     radius: int = setting(3, kind=int, low=1, example=3, flag="blur", help="Blur radius.", adds_stage=True)
...     mode: str = setting("box", kind=str, choices=("box", "gauss"), flag="blur_mode", help="Kernel shape.")
>>> param_keys(Blur)
('radius', 'mode')
>>> read(Blur, {"mode": "gauss"})
Blur(radius=3, mode='gauss')
>>> check_params("blur", Blur, {"radius": 0})
Traceback (most recent call last):
...
kopt.errors.ConfigError: blur.radius=0: must be an integer of at least 1, e.g. 3
>>> check_params("blur", Blur, {"mode": "disc"})
Traceback (most recent call last):
...
kopt.errors.ConfigError: blur.mode=disc: must be one of box, gauss
>>> [(s.key, s.flag, s.adds_stage) for s in settings_of(Blur)]
[('radius', 'blur', True), ('mode', 'blur_mode', False)]
"""

import dataclasses
import math
import numbers
from typing import Any

from kopt.errors import ConfigError

__all__ = [
    "ALWAYS",
    "NEVER",
    "UNLESS_NONE",
    "WHEN_GIVEN",
    "Setting",
    "Switch",
    "check_params",
    "parse_names",
    "param_keys",
    "read",
    "require_fraction",
    "require_positive_number",
    "search_space",
    "setting",
    "settings_of",
]

# How a flags-only ``kopt-optimize`` run puts a flag's value into the stage's params.
ALWAYS = "always"  # the flag's value, given or default
UNLESS_NONE = "unless_none"  # left out while the flag's value is None
WHEN_GIVEN = "when_given"  # only when the flag is on the command line
NEVER = "never"  # the flag sets it over a recipe file only; the technique completes it from earlier stages
_FROM_FLAGS = (ALWAYS, UNLESS_NONE, WHEN_GIVEN, NEVER)
_KINDS = (bool, int, float, str, list, object)
_SAME = object()
_METADATA = "kopt.setting"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One param of a technique, as :func:`setting` declares it.

    Attributes:
        key: The recipe key (the dataclass field's name).
        default: The value the technique uses when the recipe leaves it out;
            ``None`` with ``nullable=False`` makes the key required.
        kind: ``bool``, ``int``, ``float`` (ints accepted), ``str``, ``list``
            or ``object`` (no type check).
        help: The flag's help text; ``None`` when the flag is defined elsewhere
            (by another setting or by the CLI) and only referenced here.
        flag: The ``kopt-optimize`` flag that sets it, or ``None``.
        flag_default: The flag's default (usually ``default``).
        choices: The allowed values, or ``None``.
        low: Lower bound of a number, or ``None``.
        high: Upper bound of a number, or ``None``.
        open_bounds: Whether ``low`` and ``high`` are excluded.
        example: A good value, shown in error messages.
        reason: The error message of a bad value, when the derived one does not fit.
        nullable: Whether ``None`` is a valid value.
        checked: Whether :func:`check_params` checks it (``False``: the
            technique's own ``check`` does).
        adds_stage: Whether giving its flag adds the technique's stage.
        from_flags: :data:`ALWAYS`, :data:`UNLESS_NONE`, :data:`WHEN_GIVEN` or :data:`NEVER`.
        parse: Turns the flag's text into the recipe value (``"2,4"`` -> ``[2, 4]``).
        flag_enum: Whether a ``str`` flag with choices is an absl enum flag.
        group: The ``--help`` group of the flag, when not the technique's own.
        search: The default search range (``{"min", "max"}``) or choices, or ``None``.
        search_needs_budget: Whether the default search varies it only under a size budget.
    """

    key: str
    default: Any
    kind: type
    help: str | None = None
    flag: str | None = None
    flag_default: Any = None
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    open_bounds: bool = False
    example: Any = None
    reason: str | None = None
    nullable: bool = False
    checked: bool = True
    adds_stage: bool = False
    from_flags: str = ALWAYS
    parse: Any = None
    flag_enum: bool = True
    group: str | None = None
    search: Any = None
    search_needs_budget: bool = False

    def check(self, stage, value):
        """Raises :class:`kopt.ConfigError` keyed ``<stage>.<key>`` for a bad ``value``."""
        if not self.checked or (value is None and self.nullable):
            return
        if not self._valid(value):
            raise ConfigError(f"{stage}.{self.key}", value, self.reason or self._reason())

    def _valid(self, value):
        if self.choices is not None:
            return isinstance(value, str | int | float | bool | type(None)) and value in self.choices
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind in (int, float):
            allowed = numbers.Integral if self.kind is int else numbers.Real
            if isinstance(value, bool) or not isinstance(value, allowed) or not math.isfinite(value):
                return False
            below = self.low is not None and (value <= self.low if self.open_bounds else value < self.low)
            above = self.high is not None and (value >= self.high if self.open_bounds else value > self.high)
            return not (below or above)
        return self.kind is object or isinstance(value, self.kind)

    def _reason(self):
        example = "" if self.example is None else f", e.g. {self.example}"
        if self.choices is not None:
            return f"must be one of {', '.join(str(choice) for choice in self.choices)}"
        if self.kind is bool:
            return "must be true or false"
        if self.kind is int and self.high is None and self.low is not None:
            return f"must be an integer of at least {self.low}{example}"
        if self.kind is float and (self.low, self.high, self.open_bounds) == (0, 1, True):
            return f"must be a fraction in (0, 1){example}"
        if self.kind is float and (self.low, self.high, self.open_bounds) == (0, None, True):
            return "must be a finite number above 0"
        if self.kind in (int, float):
            ends = "()" if self.open_bounds else "[]"
            low = "-inf" if self.low is None else f"{self.low:g}"
            high = "inf" if self.high is None else f"{self.high:g}"
            noun = "an integer" if self.kind is int else "a number"
            return f"must be {noun} in {ends[0]}{low}, {high}{ends[1]}{example}"
        return f"must be a {self.kind.__name__}"


@dataclasses.dataclass(frozen=True)
class Switch:
    """A boolean flag that adds a stage having no param of its own (``--qat``, ``--distill``).

    A settings dataclass names it in its ``switch`` class variable, beside
    ``flag_group``, the ``--help`` group of its flags.

    Attributes:
        flag: The flag's name.
        help: The flag's help text.
    """

    flag: str
    help: str


def setting(default=None, *, kind, flag_default=_SAME, **options):
    """A dataclass field declaring one technique param (see :class:`Setting`).

    Args:
        default: The param's default; ``None`` makes it required unless
            ``nullable=True``.
        kind: The param's type: ``bool``, ``int``, ``float``, ``str``, ``list`` or ``object``.
        flag_default: The flag's default, when it differs from ``default``.
        **options: The other attributes of :class:`Setting`.

    Returns:
        A ``dataclasses.field`` carrying the :class:`Setting` in its metadata.

    Raises:
        ValueError: For an unknown ``kind`` or ``from_flags``, naming the value received.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {[k.__name__ for k in _KINDS]}. Received: kind={kind!r}")
    from_flags = options.get("from_flags", ALWAYS)
    if from_flags not in _FROM_FLAGS:
        raise ValueError(f"from_flags must be one of {_FROM_FLAGS}. Received: from_flags={from_flags!r}")
    if options.get("choices") is not None:
        options["choices"] = tuple(options["choices"])
    declared = {"default": default, "kind": kind, "flag_default": default if flag_default is _SAME else flag_default}
    field_default = tuple(default) if isinstance(default, list) else default
    return dataclasses.field(default=field_default, metadata={_METADATA: {**declared, **options}})


def settings_of(cls):
    """The :class:`Setting` of each field of the settings dataclass ``cls``, in field order.

    Raises:
        TypeError: If ``cls`` is not a dataclass or a field was not made by :func:`setting`.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"Expected a settings dataclass. Received: {cls!r}")
    found = []
    for field in dataclasses.fields(cls):
        if _METADATA not in field.metadata:
            raise TypeError(f"{cls.__name__}.{field.name} must be declared with kopt.pipeline.settings.setting().")
        found.append(Setting(key=field.name, **field.metadata[_METADATA]))
    return tuple(found)


def param_keys(cls):
    """The recipe keys ``cls`` declares, in field order."""
    return tuple(item.key for item in settings_of(cls))


def check_params(stage, cls, params):
    """Checks every declared param of ``params`` (or its default) against its declaration.

    Raises:
        ConfigError: Keyed ``<stage>.<key>``, naming the value received.
    """
    for item in settings_of(cls):
        item.check(stage, params.get(item.key, item.default))


def read(cls, params):
    """``params`` as an instance of ``cls``: the declared keys, defaults filled in."""
    return cls(**{key: value for key, value in params.items() if key in param_keys(cls)})


def search_space(stage, cls, *, size_budget):
    """The default search space of a stage: ``{"<stage>.<key>": range or choices}``.

    Args:
        stage: The stage's name.
        cls: Its settings dataclass.
        size_budget: Whether the search has a size budget; settings that only
            set how hard a technique compresses are varied only under one.
    """
    return {
        f"{stage}.{item.key}": item.search
        for item in settings_of(cls)
        if item.search is not None and (size_budget or not item.search_needs_budget)
    }


def require_positive_number(key, value):
    """Raises :class:`kopt.ConfigError` unless ``value`` is a finite number above 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(key, value, "must be a finite number above 0")


def require_fraction(key, value, *, example):
    """Raises :class:`kopt.ConfigError` unless ``value`` is a number in the open (0, 1)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
        raise ConfigError(key, value, f"must be a fraction in (0, 1), e.g. {example}")


def parse_names(text):
    """``"stem,head"`` -> ``["stem", "head"]`` (a comma-separated flag of layer names); ``None`` stays ``None``.

    Example:

    >>> parse_names("Conv1, Logits")
    ['Conv1', 'Logits']
    """
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]
