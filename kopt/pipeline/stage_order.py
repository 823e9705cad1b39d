"""The order and combinations of a recipe's stages, checked the same for flags and files.

``kopt-optimize``'s flags always build stages in one order; a recipe file lists
them by hand, so it can say things the flags cannot: PTQ before pruning (the
export of a stage that is not last is never used), QAT and PTQ together,
pruning after clustering (it breaks the clusters), the same stage twice.
:func:`check_stage_order` refuses those before any work, and insists that a
stage after pruning or clustering says whether it keeps their zeros and
shared values, since silently losing them is a wrong result::

    techniques:
      - {name: prune, params: {target_sparsity: 0.8}}
      - {name: qat, params: {preserve: [sparsity]}}   # or preserve: [] to let them go
"""

from kopt.errors import ConfigError

__all__ = ["CONFLICTS", "STAGE_RANK", "check_stage_order", "conflict_reason"]

# Where each built-in stage may sit: a stage never follows one of higher rank.
# Stages a user registers have no rank and may sit anywhere before the export.
STAGE_RANK = {"distill": 0, "prune_structured": 1, "prune": 2, "cluster": 3, "auto": 4, "qat": 5, "ptq": 5}
_WHY_FIRST = {
    "distill": "distillation trains a new student, which replaces the model, so it must come first",
    "prune_structured": "structured pruning rebuilds the layers, which would drop earlier wrappers' work",
    "prune": "pruning after clustering would break the shared values",
    "cluster": "clustering must come before quantization",
    "auto": "auto chooses pruning and quantization itself after any distillation",
}
# Stages that choose by hand what another stage chooses itself, and why they cannot go together;
# {first} and {second} are spelled as the caller names stages (recipe names, or flags).
_CONFLICTS = {
    ("qat", "ptq"): "choose {first} or {second}, not both: QAT already exports an integer model",
    **{
        ("auto", other): "conflicts with {first}, which chooses pruning and int8 quantization itself; "
        "drop {second} or {first}"
        for other in ("prune", "prune_structured", "cluster", "qat", "ptq")
    },
}
CONFLICTS = frozenset(_CONFLICTS)


def conflict_reason(first, second, spell=str):
    """Why stages ``first`` and ``second`` cannot both run, naming them as ``spell`` does.

    Example:

    >>> conflict_reason("qat", "ptq", spell=lambda name: f"--{name}")
    'choose --qat or --ptq, not both: QAT already exports an integer model'
    """
    return _CONFLICTS[(first, second)].format(first=spell(first), second=spell(second))


# (earlier stage, later stage, the later stage's param that must be given, what it keeps)
_MUST_SAY_PRESERVE = (
    ("prune", "cluster", "preserve_sparsity", "true to keep the pruned zeros, false to let them go"),
    ("prune", "qat", "preserve", "[sparsity] to keep the pruned zeros, [] to let them go"),
    ("cluster", "qat", "preserve", "[clusters] to keep the shared values, [] to let them go"),
)


def check_stage_order(specs, techniques):
    """Raises :class:`kopt.ConfigError` for stages in an order or combination that misleads.

    Args:
        specs: The recipe's :class:`kopt.pipeline.TechniqueSpec` tuple.
        techniques: ``[(Technique, params), ...]`` for the same stages.

    Raises:
        ConfigError: Keyed ``techniques[i].name`` (or ``techniques[i].params.<key>``).

    Example:

    >>> from kopt.pipeline import TechniqueSpec
    >>> from kopt.pipeline.techniques import get_technique
    >>> specs = (TechniqueSpec("ptq", {"mode": "int8"}), TechniqueSpec("prune", {"target_sparsity": 0.5}))
    >>> check_stage_order(specs, [(get_technique(s.name), s.params) for s in specs])
    Traceback (most recent call last):
    ...
    kopt.errors.ConfigError: techniques[0].name=ptq: its int8 export would be dropped: only the last stage's \
export options are used, and prune comes after it; put ptq last
    """
    names = [spec.name for spec in specs]
    for index, name in enumerate(names):
        if name in STAGE_RANK and name in names[:index]:
            raise ConfigError(f"techniques[{index}].name", name, f"the recipe already has a {name} stage")
    for first, second in sorted(CONFLICTS):
        if first in names and second in names:
            index = max(names.index(first), names.index(second))
            raise ConfigError(f"techniques[{index}].name", names[index], conflict_reason(first, second))
    for index, (technique, params) in enumerate(techniques[:-1]):
        mode = technique.export_options(params).get("mode", "float32")
        if mode != "float32":
            raise ConfigError(
                f"techniques[{index}].name",
                names[index],
                f"its {mode} export would be dropped: only the last stage's export options are used, and "
                f"{names[index + 1]} comes after it; put {names[index]} last",
            )
    ranked = [(index, name) for index, name in enumerate(names) if name in STAGE_RANK]
    for (_, earlier), (index, later) in zip(ranked, ranked[1:]):
        if STAGE_RANK[later] < STAGE_RANK[earlier]:
            raise ConfigError(f"techniques[{index}].name", later, f"cannot come after {earlier}: {_WHY_FIRST[later]}")
    for earlier, later, key, meaning in _MUST_SAY_PRESERVE:
        if earlier in names and later in names and key not in specs[names.index(later)].params:
            index = names.index(later)
            raise ConfigError(
                f"techniques[{index}].params.{key}",
                "(not set)",
                f"{later} after {earlier} must say what it keeps: set {key} to {meaning}",
            )
