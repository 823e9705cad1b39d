"""``kopt-optimize``'s technique flags, read from each technique's settings dataclass.

Importing this module defines the absl flag of every setting of a registered
technique that names one (:mod:`kopt.pipeline.settings`), and each settings
dataclass's ``switch`` (``--qat``, ``--distill``...). The tables the CLI needs
are built from the same declarations, never listed by hand:
:data:`FLAG_KEYS` (flag -> the ``<stage>.<param>`` keys it sets),
:data:`STAGE_OF_FLAG` (flags that add a stage), :data:`FLAG_FOR_KEY` (the flag
to name in an error about a key), :data:`NEEDS_STAGE` (flags that only mean
something with a technique's flag) and :data:`GROUPS` (``--help`` groups).
"""

from absl import flags

from kopt.pipeline import stages  # noqa: F401  (registers the built-in techniques)
from kopt.pipeline.settings import NEVER
from kopt.pipeline.settings import UNLESS_NONE
from kopt.pipeline.settings import WHEN_GIVEN
from kopt.pipeline.settings import settings_of
from kopt.pipeline.stage_order import STAGE_RANK
from kopt.pipeline.techniques import get_technique
from kopt.pipeline.techniques import registered_techniques

__all__ = [
    "BUILD_ORDER",
    "FLAG_FOR_KEY",
    "FLAG_KEYS",
    "GROUPS",
    "NEEDS_STAGE",
    "PARSE",
    "STAGE_FLAGS",
    "STAGE_OF_FLAG",
    "params_from_flags",
    "requested",
]

# --help groups of the technique flags, in order; a technique naming another group comes last.
GROUP_ORDER = (
    "Pruning",
    "Clustering",
    "Quantization",
    "Distillation",
    "Fine-tuning of each technique",
    "Accuracy-aware compression",
)


def _declared():
    """The registered techniques that declare settings, in ``--help`` order."""
    found = [get_technique(name) for name in registered_techniques(in_registration_order=True)]
    found = [technique for technique in found if technique.settings is not None]
    return sorted(found, key=lambda technique: _group_rank(_group(technique)))


def _group(technique):
    return getattr(technique.settings, "flag_group", "Other")


def _group_rank(title):
    return GROUP_ORDER.index(title) if title in GROUP_ORDER else len(GROUP_ORDER)


def _switch(technique):
    return getattr(technique.settings, "switch", None)


def _define(item, flag_values):
    name, default, text = item.flag, item.flag_default, item.help
    if item.kind is bool:
        flags.DEFINE_bool(name, default, text, flag_values=flag_values)
    elif item.kind is int and item.parse is None:
        flags.DEFINE_integer(name, default, text, flag_values=flag_values)
    elif item.kind is float and item.parse is None:
        flags.DEFINE_float(name, default, text, flag_values=flag_values)
    elif item.choices is not None and item.flag_enum and item.parse is None:
        flags.DEFINE_enum(name, default, list(item.choices), text, flag_values=flag_values)
    else:
        flags.DEFINE_string(name, default, text, flag_values=flag_values)


def _stage_flags(technique):
    """The flags that add ``technique``'s stage: its switch, or settings marked ``adds_stage``."""
    switch = _switch(technique)
    own = [item.flag for item in settings_of(technique.settings) if item.adds_stage]
    return ([switch.flag] if switch is not None else []) + own


TECHNIQUES = tuple(_declared())
# The order flags build stages in: the recipe order of stage_order.STAGE_RANK.
BUILD_ORDER = tuple(sorted(TECHNIQUES, key=lambda technique: STAGE_RANK.get(technique.name, len(STAGE_RANK))))
STAGE_FLAGS = {technique.name: tuple(_stage_flags(technique)) for technique in BUILD_ORDER}
STAGE_OF_FLAG = {flag: name for name, names in STAGE_FLAGS.items() for flag in names}
FLAG_KEYS = {}
FLAG_FOR_KEY = {}
NEEDS_STAGE = {}
PARSE = {}
GROUPS = {}
_DEFINED = {}


def _build(flag_values=flags.FLAGS):
    for technique in TECHNIQUES:
        switch = _switch(technique)
        if switch is not None:
            flags.DEFINE_bool(switch.flag, False, switch.help, flag_values=flag_values)
            FLAG_KEYS[switch.flag] = ()
            FLAG_FOR_KEY[technique.name] = switch.flag
            GROUPS.setdefault(_group(technique), []).append(switch.flag)
        for item in settings_of(technique.settings):
            if item.flag is None:
                continue
            if item.help is not None and item.flag in _DEFINED and _DEFINED[item.flag] != item:
                # One declaration per flag (an inherited field is the same one); others reference it with help=None.
                raise ValueError(f"--{item.flag} is declared twice with help; give the second help=None. "
                                 f"Received: {technique.name}.{item.key}")  # fmt: skip
            if item.help is not None and item.flag not in _DEFINED:
                _DEFINED[item.flag] = item
                _define(item, flag_values)
                GROUPS.setdefault(item.group or _group(technique), []).append(item.flag)
            key = f"{technique.name}.{item.key}"
            FLAG_KEYS[item.flag] = FLAG_KEYS.get(item.flag, ()) + (key,)
            FLAG_FOR_KEY[key] = item.flag
            if item.parse is not None:
                PARSE[item.flag] = item.parse
    for technique in TECHNIQUES:
        for item in settings_of(technique.settings):
            if item.flag in _DEFINED and not item.adds_stage and item.from_flags != NEVER:
                wanted = NEEDS_STAGE.setdefault(item.flag, [])
                wanted += [flag for flag in STAGE_FLAGS[technique.name] if flag not in wanted]


_build()
NEEDS_STAGE = {flag: tuple(stage_flags) for flag, stage_flags in NEEDS_STAGE.items()}
GROUPS = {title: tuple(names) for title, names in sorted(GROUPS.items(), key=lambda entry: _group_rank(entry[0]))}


def _off(value):
    """Whether a technique flag's value leaves it off; ``--prune=0`` is on (and refused as a sparsity)."""
    return value is None or value is False or value == "none"


def requested(name, value):
    """Whether the flag values ``value`` (``{flag: value}``) ask for the stage ``name``."""
    return any(not _off(value[flag]) for flag in STAGE_FLAGS[name])


def params_from_flags(technique, value, given, earlier):
    """The params of ``technique``'s stage from the flags, completed from the stages before it.

    Args:
        technique: A :class:`kopt.pipeline.Technique` declaring ``settings``.
        value: ``{flag: value}`` of every flag.
        given: The names of the flags on the command line.
        earlier: The :class:`kopt.pipeline.TechniqueSpec` of the stages built before it.
    """
    params = {}
    for item in settings_of(technique.settings):
        if item.flag is None or item.from_flags == NEVER:
            continue
        flag_value = value[item.flag]
        if (item.from_flags == UNLESS_NONE and flag_value is None) or (
            item.from_flags == WHEN_GIVEN and item.flag not in given
        ):
            continue
        params[item.key] = item.parse(flag_value) if item.parse is not None else flag_value
    return technique.with_earlier_stages(params, earlier)
