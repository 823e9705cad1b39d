"""The ``search`` block of a recipe: which tuner, how many trials, over what space.

A recipe's ``search`` is a dict::

    search:
      tuner: bayesian          # random | bayesian | hyperband
      max_trials: 10
      directory: kopt_search   # KerasTuner's folder; a rerun resumes from it
      size_budget_kib: 40      # optional: gzip size the optimized file must fit
      space:                   # optional; a default space when left out
        learning_rate: {min: 1.0e-4, max: 1.0e-2, sampling: log}
        optimizer: [adam, adamw, nesterov]
        prune.target_sparsity: {min: 0.5, max: 0.95}
        cluster.number_of_clusters: [8, 16, 32]
        distill.temperature: {min: 1, max: 8}

Space keys are recipe keys (``learning_rate``, ``optimizer``, ``lr_schedule``...)
or ``<stage>.<param>`` of a stage in the recipe. A list is a choice; ``{min,
max}`` a range, of integers when both ends are integers, optionally with
``sampling: log`` and ``step``.
"""

import dataclasses
import math
import numbers

from kopt.errors import ConfigError
from kopt.pipeline.checks import check_techniques
from kopt.pipeline.overrides import override_recipe
from kopt.pipeline.settings import search_space
from kopt.pipeline.techniques import get_technique
from kopt.pipeline.techniques import registered_techniques

TUNERS = ("random", "bayesian", "hyperband")
SEARCH_KEYS = ("tuner", "max_trials", "directory", "size_budget_kib", "space")
# Recipe keys a search may vary; stage params are "<stage>.<param>".
SEARCHABLE = (
    "learning_rate",
    "optimizer",
    "momentum",
    "weight_decay",
    "lr_schedule",
    "warmup_epochs",
    "epochs",
    "batch_size",
)
DEFAULT_MAX_TRIALS = 10
_RANGE_KEYS = ("min", "max", "sampling", "step")


def settings(search):
    """``search`` with every default filled in (not the space, see :func:`space_of`)."""
    return {
        "tuner": search.get("tuner", "random"),
        "max_trials": search.get("max_trials", DEFAULT_MAX_TRIALS),
        "directory": search.get("directory"),
        "size_budget_kib": search.get("size_budget_kib"),
    }


def check_search(search, recipe):
    """Raises :class:`kopt.ConfigError` naming ``search.<key>`` for a bad search block.

    Every choice and both ends of every range are applied to ``recipe`` and
    checked, so a trial never fails on a setting the space could have caught.
    """
    if not isinstance(search, dict):
        raise ConfigError("search", search, "must be a mapping of tuner, max_trials, directory, size_budget_kib, space")
    for key in search:
        if key not in SEARCH_KEYS:
            raise ConfigError(f"search.{key}", search[key], f"unknown setting; known: {', '.join(SEARCH_KEYS)}")
    values = settings(search)
    if values["tuner"] not in TUNERS:
        raise ConfigError("search.tuner", values["tuner"], f"must be one of {', '.join(TUNERS)}")
    trials = values["max_trials"]
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ConfigError("search.max_trials", trials, "must be an integer of at least 1")
    directory = values["directory"]
    if directory is not None and (not isinstance(directory, str) or not directory.strip()):
        raise ConfigError("search.directory", directory, "must be a non-empty path")
    budget = values["size_budget_kib"]
    if budget is not None and (not _is_number(budget) or budget <= 0):
        raise ConfigError("search.size_budget_kib", budget, "must be a number of KiB above 0")
    space = search.get("space")
    if space is not None and (not isinstance(space, dict) or not space):
        raise ConfigError("search.space", space, "must be a non-empty mapping of key: choices or range")
    for key, spec in space_of(search, recipe).items():
        if key == "epochs" and values["tuner"] == "hyperband":
            raise ConfigError("search.space.epochs", spec, "Hyperband sets the epochs itself; leave them out")
        _check_entry(key, spec, recipe)


def space_of(search, recipe):
    """The search space: ``search["space"]`` or the default for ``recipe``.

    The default varies the float training (learning rate, optimizer, schedule)
    and the stage settings declared with a ``search`` range (distillation's
    temperature and alpha); with a size budget also those that set how hard
    each technique compresses (without a budget the accuracy objective would
    only undo the compression).
    """
    if search.get("space"):
        return dict(search["space"])
    rate = recipe.learning_rate
    space = {
        "learning_rate": {"min": rate / 10, "max": rate * 10, "sampling": "log"},
        "optimizer": ["adam", "adamw", "nesterov"],
        "lr_schedule": ["constant", "cosine"],
    }
    declared = [get_technique(spec.name) for spec in recipe.techniques if spec.name in registered_techniques()]
    declared = [(stage.name, stage.settings) for stage in declared if stage.settings is not None]
    quality, strength = {}, {}
    for name, settings in declared:
        quality.update(search_space(name, settings, size_budget=False))
        if search.get("size_budget_kib") is not None:
            strength.update(search_space(name, settings, size_budget=True))
    # Quality settings first, then how hard each stage compresses.
    return {**space, **quality, **{key: value for key, value in strength.items() if key not in quality}}


def apply_values(recipe, values):
    """Returns ``recipe`` with ``{key: value}`` of a trial set, and no search.

    ``<stage>.<param>`` keys set the param of every stage of that name.

    Example:

    >>> from kopt.pipeline import Recipe, TechniqueSpec
    >>> recipe = Recipe(techniques=(TechniqueSpec("prune", {"target_sparsity": 0.5}),))
    >>> trial = apply_values(recipe, {"learning_rate": 0.01, "prune.target_sparsity": 0.9})
    >>> trial.learning_rate, trial.techniques[0].params["target_sparsity"]
    (0.01, 0.9)
    """
    return dataclasses.replace(override_recipe(recipe, values), search=None)


def _check_entry(key, spec, recipe):
    path = f"search.space.{key}"
    stage, _, param = key.partition(".")
    if param:
        if stage not in {spec.name for spec in recipe.techniques}:
            raise ConfigError(path, spec, f"the recipe has no {stage!r} stage to vary")
    elif key not in SEARCHABLE:
        raise ConfigError(path, spec, f"not searchable; use {', '.join(SEARCHABLE)} or <stage>.<param>")
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(path, spec, "a choice needs at least one value")
        candidates = spec
    elif isinstance(spec, dict):
        for range_key in spec:
            if range_key not in _RANGE_KEYS:
                raise ConfigError(
                    f"{path}.{range_key}", spec[range_key], f"unknown; a range has {', '.join(_RANGE_KEYS)}"
                )
        low, high = spec.get("min"), spec.get("max")
        if not (_is_number(low) and _is_number(high)) or not low < high:
            raise ConfigError(path, spec, "a range needs numbers min < max")
        sampling = spec.get("sampling", "linear")
        if sampling not in ("linear", "log"):
            raise ConfigError(f"{path}.sampling", sampling, "must be linear or log")
        if sampling == "log" and low <= 0:
            raise ConfigError(path, spec, "log sampling needs min above 0")
        step = spec.get("step")
        if step is not None and (not _is_number(step) or step <= 0):
            raise ConfigError(f"{path}.step", step, "must be a number above 0")
        candidates = [low, high]
    else:
        raise ConfigError(path, spec, "must be a list of choices or a {min, max} range")
    for value in candidates:
        try:
            trial = apply_values(recipe, {key: value}).validate()
            check_techniques(trial)
        except ConfigError as err:
            raise ConfigError(path, value, f"a trial would fail: {err}") from err


def _is_number(value):
    # NaN and infinity compare False with everything, so they would slip past range checks.
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
