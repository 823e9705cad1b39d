"""Hyperparameter search over recipes with KerasTuner.

Each trial is a whole pipeline pass (float training, the recipe's stages,
TFLite export) of the recipe with the trial's values, scored on the
validation split carved from the training data; the test split is never read.
The objective ``val_score`` is the optimized file's validation accuracy in the
LiteRT interpreter, minus 1 when a ``size_budget_kib`` is set and the gzipped
file exceeds it, so every trial within the budget ranks above every trial
over it. KerasTuner's oracles (random search, Bayesian optimization with a
Gaussian process, Hyperband) choose the values; Hyperband's budget is the float
training's epochs. With a ``directory`` the search resumes after an
interruption: finished trials are reloaded, not rerun.
"""

import os
import shutil
import tempfile
import time

from absl import logging

from kopt import extras
from kopt.pipeline import search_spec as search_lib
from kopt.pipeline.checks import check_techniques
from kopt.pipeline.execution import execute

OBJECTIVE = "val_score"
PROJECT = "kopt_search"

keras_tuner = extras.require("keras_tuner", "hyperparameter search (--tune, or search: in a recipe file)")


def search(recipe, strategy):
    """Runs the search of ``recipe.search`` and returns its trials and best recipe.

    Returns:
        A dict with ``tuner``, ``max_trials``, ``directory``,
        ``size_budget_kib``, ``space``, ``objective``, ``trials`` (see
        :func:`trial_rows`), ``best_trial``, ``best_recipe`` (plain data, no
        search: rerun it to repeat the final model), ``best_recipe_object`` and
        ``seconds``.
    """
    started = time.perf_counter()
    options = search_lib.settings(recipe.search)
    space = search_lib.space_of(recipe.search, recipe)
    directory = options["directory"]
    scratch = None
    if directory is None:
        scratch = directory = tempfile.mkdtemp(prefix="kopt-search-")
    try:
        tuner = _RecipeTuner(
            _oracle(options, recipe),
            base=recipe,
            space=space,
            strategy=strategy,
            budget_kib=options["size_budget_kib"],
            directory=directory,
            project_name=PROJECT,
        )
        tuner.search(verbose=0)
        rows = trial_rows(tuner.oracle, space, budget_kib=options["size_budget_kib"])
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    completed = [row for row in rows if row["status"] == "COMPLETED"]
    if not completed:
        raise RuntimeError(f"Every trial of the search failed; see the log. Trials: {rows}")
    best = max(completed, key=lambda row: row["score"])
    # Hyperband's epochs are a trial's budget; the best recipe trains for the recipe's own.
    values = {key: value for key, value in best["values"].items() if key in space}
    best_recipe = search_lib.apply_values(recipe, values).resolved()
    return {
        **options,
        "directory": None if scratch is not None else os.path.abspath(directory),
        "space": space,
        "objective": OBJECTIVE,
        "trials": rows,
        "best_trial": best["trial_id"],
        "best_recipe": best_recipe.to_dict(),
        "best_recipe_object": best_recipe,
        "seconds": round(time.perf_counter() - started, 3),
    }


def trial_rows(oracle, space, *, budget_kib=None):
    """One plain-data row per trial of ``oracle``, in trial order.

    Each row has ``trial_id``, ``status``, ``values`` (the space's keys, plus
    ``epochs`` under Hyperband), ``val_accuracy``, ``tflite_bytes``,
    ``gzip_bytes``, ``within_budget`` (``None`` without a size budget) and
    ``score`` (``None`` for a failed trial).
    """
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        hp = trial.hyperparameters.values
        values = {key: hp[key] for key in space if key in hp}
        if "tuner/epochs" in hp:
            values["epochs"] = int(hp["tuner/epochs"])
        row = {"trial_id": trial_id, "status": str(trial.status), "values": values}
        for name in ("val_accuracy", "tflite_bytes", "gzip_bytes", "within_budget", OBJECTIVE):
            metric = trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None
            row[name] = metric
        for name in ("tflite_bytes", "gzip_bytes"):
            row[name] = None if row[name] is None else int(row[name])
        known = row["within_budget"] is not None and budget_kib is not None
        row["within_budget"] = bool(row["within_budget"]) if known else None
        row["score"] = row.pop(OBJECTIVE)
        rows.append(row)
    return rows


def _oracle(options, recipe):
    objective = keras_tuner.Objective(OBJECTIVE, direction="max")
    hyperparameters = keras_tuner.HyperParameters()
    for key, spec in search_lib.space_of(recipe.search, recipe).items():
        _declare(hyperparameters, key, spec)
    common = dict(objective=objective, hyperparameters=hyperparameters, seed=recipe.seed, tune_new_entries=False)
    if options["tuner"] == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=options["max_trials"], **common)
    if options["tuner"] == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=options["max_trials"], **common)
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=recipe.epochs, factor=3, **common)
    # Hyperband sizes its brackets from max_epochs; the trial cap still holds.
    oracle.max_trials = options["max_trials"]
    return oracle


def _declare(hyperparameters, key, spec):
    if isinstance(spec, list):
        hyperparameters.Choice(key, spec)
        return
    sampling = spec.get("sampling", "linear")
    low, high = spec["min"], spec["max"]
    if isinstance(low, int) and isinstance(high, int) and not isinstance(spec.get("step", 1), float):
        hyperparameters.Int(key, low, high, step=spec.get("step"), sampling=sampling)
    else:
        hyperparameters.Float(key, float(low), float(high), step=spec.get("step"), sampling=sampling)


class _RecipeTuner(keras_tuner.Tuner):
    """A KerasTuner ``Tuner`` whose trial is a pipeline pass, not a ``model.fit``."""

    def __init__(self, oracle, *, base, space, strategy, budget_kib, **kwargs):
        super().__init__(oracle, **kwargs)
        self.base = base
        self.space = space
        self.strategy = strategy
        self.budget_kib = budget_kib

    def run_trial(self, trial, *args, **kwargs):
        values = {key: trial.hyperparameters.get(key) for key in self.space}
        if "tuner/epochs" in trial.hyperparameters.values:
            values["epochs"] = int(trial.hyperparameters.get("tuner/epochs"))
        recipe = search_lib.apply_values(self.base, values).resolved().validate()
        logging.info("Search trial %s: %s", trial.trial_id, values)
        result = execute(
            recipe,
            check_techniques(recipe),
            self.strategy,
            export_dir=self.get_trial_dir(trial.trial_id),
            evaluation="validation",
            save_models=False,
        )
        optimized = result["optimized"]
        accuracy = optimized["tflite_accuracy"]
        within = self.budget_kib is None or optimized["tflite_gzip_bytes"] <= self.budget_kib * 1024
        logging.info(
            "Search trial %s: validation accuracy %.4f, %d gzip bytes%s.",
            trial.trial_id,
            accuracy,
            optimized["tflite_gzip_bytes"],
            "" if within else " (over the size budget)",
        )
        return {
            OBJECTIVE: accuracy if within else accuracy - 1.0,
            "val_accuracy": accuracy,
            "tflite_bytes": float(optimized["tflite_bytes"]),
            "gzip_bytes": float(optimized["tflite_gzip_bytes"]),
            "within_budget": float(within),
        }
