"""``kopt-optimize`` technique flags -> the recipe's stages, in the order they apply.

A flag that only tunes a technique (``--qat_scheme``, ``--prune_schedule``...)
is an error without that technique's flag, like ``--teacher`` without
``--distill``: silently ignoring it would run something other than what was asked::

    kopt-optimize --qat_scheme=16x8            # error: only means something with --qat
    kopt-optimize --qat --qat_scheme=16x8      # fine

Which flags exist, what they set and which technique they need is read from the
techniques' settings (:mod:`kopt.cli.technique_flags`); this module only adds
the rules between stages: the default run, and flags that contradict each other.
"""

from absl import flags

from kopt.cli import technique_flags
from kopt.cli.search_flags import SEARCH_NEEDS
from kopt.errors import ConfigError
from kopt.pipeline.spec import TechniqueSpec
from kopt.pipeline.stage_order import CONFLICTS
from kopt.pipeline.stage_order import conflict_reason

__all__ = ["DEFAULT_SPARSITY", "NEEDS_STAGE", "check_flags_need_stage", "default_compression", "techniques_from_flags"]

# Flag -> the flags of which at least one must be on for it to mean something.
NEEDS_STAGE = {**technique_flags.NEEDS_STAGE, **SEARCH_NEEDS}
# The run kopt-optimize makes when no flag names a technique: prune, then int8 QAT
# that keeps the zeros. On the bundled digits it gives a file about 0.13x the
# float file's gzip size with no accuracy lost (README, `kopt-optimize`).
DEFAULT_SPARSITY = 0.75
_DEFAULT_STAGES = {"prune": DEFAULT_SPARSITY, "qat": True}
# Flags that choose a technique; with none of them given, the default run applies.
TECHNIQUE_FLAGS = tuple(flag for names in technique_flags.STAGE_FLAGS.values() for flag in names)
# Flags that choose by hand what --auto chooses itself (stage_order.CONFLICTS), with their stage.
AUTO_CONFLICTS = {
    flag: name for name, names in technique_flags.STAGE_FLAGS.items() if ("auto", name) in CONFLICTS for flag in names
}


def _off(value):
    """Whether a technique flag's value leaves it off; ``--prune=0`` is on (and refused as a sparsity)."""
    return value is None or value is False or value == "none"


def default_compression(flag_values=flags.FLAGS):
    """Whether the run gets the default techniques: ``--techniques=default`` and no technique flag."""
    given = next((name for name in TECHNIQUE_FLAGS if not _off(flag_values[name].value)), None)
    if flag_values["techniques"].value == "none" and given is not None:
        raise ConfigError("techniques", "none", f"asks for a float-only run, but --{given} asks for a technique")
    return flag_values["techniques"].value == "default" and given is None


def check_flags_need_stage(flag_values=flags.FLAGS):
    """Raises :class:`kopt.ConfigError` for a flag given without the technique it tunes.

    Example (``--qat_scheme=16x8`` alone): ``--qat_scheme=16x8: only means
    something with --qat``.
    """
    defaults = tuple(_DEFAULT_STAGES) if default_compression(flag_values) else ()
    for name, stages in NEEDS_STAGE.items():
        if not flag_values[name].present or set(stages) & set(defaults):
            continue
        if all(_off(flag_values[stage].value) for stage in stages):
            wanted = " or ".join(f"--{stage}" for stage in stages)
            raise ConfigError(name, flag_values[name].value, f"only means something with {wanted}")


def techniques_from_flags(flag_values=flags.FLAGS):
    """The technique stages the flags ask for, in the order they are applied.

    Call :func:`check_flags_need_stage` first; this reads the flags as given.
    With no technique flag (and ``--techniques=default``) the run prunes to
    :data:`DEFAULT_SPARSITY` and then quantizes with QAT, keeping the zeros.

    Stages come in :data:`kopt.pipeline.stage_order.STAGE_RANK` order:
    distillation first (its student is what the others optimize), then
    structured pruning, magnitude pruning, clustering and quantization (QAT or
    PTQ, not both). Each stage's params come from its settings' flags, and the
    technique completes them from the stages before it (QAT after pruning keeps
    the zeros); recipe files are checked against the same order
    (:mod:`kopt.pipeline.stage_order`).
    """
    names = {flag for flags_of_stage in technique_flags.STAGE_FLAGS.values() for flag in flags_of_stage}
    names |= set(technique_flags.FLAG_KEYS)
    value = {name: flag_values[name].value for name in names}
    given = {name for name in names if flag_values[name].present}
    if default_compression(flag_values):
        value.update(_DEFAULT_STAGES)
    if value["qat"] and value["ptq"] is not None:
        raise ConfigError("ptq", value["ptq"], conflict_reason("qat", "ptq", spell=lambda name: f"--{name}"))
    if technique_flags.requested("auto", value):
        for flag, stage in AUTO_CONFLICTS.items():
            if not _off(value[flag]):
                spell = {"auto": "--auto", stage: f"--{flag}"}.get
                raise ConfigError(flag, value[flag], conflict_reason("auto", stage, spell=spell))
    specs = []
    for technique in technique_flags.BUILD_ORDER:
        if technique_flags.requested(technique.name, value):
            params = technique_flags.params_from_flags(technique, value, given, tuple(specs))
            specs.append(TechniqueSpec(technique.name, params))
    return tuple(specs)
