"""``kopt-optimize`` technique flags -> the recipe's stages, in the order they apply.

A flag that only tunes a technique (``--qat_scheme``, ``--prune_schedule``...)
is an error without that technique's flag, like ``--teacher`` without
``--distill``: silently ignoring it would run something other than what was asked::

    kopt-optimize --qat_scheme=16x8            # error: only means something with --qat
    kopt-optimize --qat --qat_scheme=16x8      # fine
"""

from absl import flags
from absl import logging

from kopt.cli import auto_flags
from kopt.errors import ConfigError

__all__ = ["NEEDS_STAGE", "check_flags_need_stage", "parse_m_by_n", "techniques_from_flags"]

# Flag -> the flags of which at least one must be on for it to mean something.
NEEDS_STAGE = {
    "teacher": ("distill",),
    "student": ("distill",),
    "distillation": ("distill",),
    "temperature": ("distill",),
    "alpha": ("distill",),
    "prune_schedule": ("prune", "sparsity_m_by_n"),
    "cluster_init": ("cluster",),
    "cluster_per_channel": ("cluster",),
    "qat_scheme": ("qat",),
    "quantized_io": ("qat", "ptq"),
    "ptq_calibration": ("ptq",),
    "finetune_epochs": ("prune", "sparsity_m_by_n", "prune_structured", "cluster", "qat", "auto"),
    "finetune_learning_rate": ("prune", "sparsity_m_by_n", "prune_structured", "cluster", "qat", "auto"),
    "max_trials": ("tune",),
    "tune_dir": ("tune",),
    "size_budget_kib": ("tune",),
}


def _off(value):
    """Whether a technique flag's value leaves it off; ``--prune=0`` is on (and refused as a sparsity)."""
    return value is None or value is False or value == "none"


# The run kopt-optimize makes when no flag names a technique: prune, then int8 QAT
# that keeps the zeros. On the bundled digits it gives a file about 0.13x the
# float file's gzip size with no accuracy lost (README, `kopt-optimize`).
DEFAULT_SPARSITY = 0.75
# Flags that choose a technique; with none of them given, the default run applies.
TECHNIQUE_FLAGS = ("distill", "prune_structured", "prune", "sparsity_m_by_n", "cluster", "qat", "ptq", "auto")


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
    defaults = ("prune", "qat") if default_compression(flag_values) else ()
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

    Distillation comes first (its student is what the others optimize), then
    structured pruning (it changes the architecture), then magnitude pruning,
    then clustering, then quantization (QAT or PTQ, not both). QAT after pruning
    and/or clustering uses the scheme that preserves them. The driver finds each
    stage by name in :mod:`kopt.pipeline.techniques` and checks the same order
    for recipe files (:mod:`kopt.pipeline.stage_order`).
    """
    from kopt.pipeline import TechniqueSpec

    value = {name: flag_values[name].value for name in _READ}
    if default_compression(flag_values):
        value.update(prune=DEFAULT_SPARSITY, qat=True)
    fine_tune = {"epochs": value["finetune_epochs"], "learning_rate": value["finetune_learning_rate"]}
    specs = []
    if value["distill"]:
        # First: the student it trains is what every later technique optimizes.
        distill = {name: value[name] for name in ("student", "teacher", "temperature", "alpha", "distillation")}
        distill.update(epochs=value["epochs"], learning_rate=value["learning_rate"])
        specs.append(TechniqueSpec("distill", distill))
    if value["prune_structured"] is not None:
        specs.append(TechniqueSpec("prune_structured", {"fraction": value["prune_structured"], **fine_tune}))
    m_by_n = parse_m_by_n(value["sparsity_m_by_n"])
    if value["prune"] is not None or m_by_n is not None:
        params = {"target_sparsity": value["prune"], "schedule": value["prune_schedule"], **fine_tune}
        if m_by_n is not None:
            params["sparsity_m_by_n"] = m_by_n
        specs.append(TechniqueSpec("prune", params))
    if value["cluster"] is not None:
        params = {
            "number_of_clusters": value["cluster"],
            "init": value["cluster_init"],
            "cluster_per_channel": value["cluster_per_channel"],
            # Clustering a pruned model keeps its zeros as one of the clusters.
            "preserve_sparsity": _has(specs, "prune"),
            **fine_tune,
        }
        specs.append(TechniqueSpec("cluster", params))
    if value["qat"] and value["ptq"] is not None:
        raise ConfigError("ptq", value["ptq"], "choose --qat or --ptq, not both: QAT already exports an integer model")
    if value["qat"]:
        params = {"scheme": value["qat_scheme"], "io_type": value["quantized_io"], **fine_tune}
        # QAT after pruning or clustering keeps their zeros and shared values.
        preserve = [kind for kind, stage in (("sparsity", "prune"), ("clusters", "cluster")) if _has(specs, stage)]
        if preserve and value["qat_scheme"] == "8bit":
            params.update(preserve=preserve, cluster_per_channel=value["cluster_per_channel"])
        elif preserve:
            logging.warning(
                "--qat_scheme=%s cannot keep %s through QAT (only 8bit can); the zeros and shared values "
                "may change during fine-tuning.", value["qat_scheme"], " and ".join(preserve)
            )
            params["preserve"] = []
        specs.append(TechniqueSpec("qat", params))
    if value["ptq"] is not None:
        params = {"mode": value["ptq"], "io_type": value["quantized_io"]}
        if value["ptq_calibration"] is not None:
            params["calibration"] = value["ptq_calibration"]
        specs.append(TechniqueSpec("ptq", params))
    auto = auto_flags.auto_params(flag_values)
    if auto is not None:
        specs.append(TechniqueSpec("auto", auto))
    return tuple(specs)


def parse_m_by_n(text):
    """``"2,4"`` -> ``[2, 4]``; ``None`` stays ``None``.

    Example:

    >>> parse_m_by_n("2,4")
    [2, 4]
    """
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ConfigError("sparsity_m_by_n", text, "must be two integers M,N such as 2,4")
    return [int(part) for part in parts]


_READ = (
    "distill", "student", "teacher", "temperature", "alpha", "distillation", "epochs", "learning_rate",
    "prune_structured", "prune", "prune_schedule", "sparsity_m_by_n", "cluster", "cluster_init",
    "cluster_per_channel", "qat", "qat_scheme", "ptq", "ptq_calibration", "quantized_io", "finetune_epochs",
    "finetune_learning_rate",
)  # fmt: skip


def _has(specs, name):
    return any(spec.name == name for spec in specs)
