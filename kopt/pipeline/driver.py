"""The driver: validate, choose the strategy, search if asked, run, report."""

import dataclasses
import importlib.metadata
import os
import platform
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from kopt.distribute import make_strategy
from kopt.distribute import worker_info
from kopt.pipeline import outputs
from kopt.pipeline import resume
from kopt.pipeline.checks import check_techniques
from kopt.pipeline.execution import execute
from kopt.version import __version__


def run(recipe):
    """Runs a whole recipe and returns its report as a dict.

    Every check that can fail on input (settings, techniques, dataset, model file)
    runs before training starts. Trained models are saved atomically as
    ``baseline.keras`` and ``optimized.keras`` in ``recipe.export_dir``, beside
    ``baseline.tflite`` and ``optimized.tflite``; other files there are left alone.
    With a ``search``, the trials run first (scored on the validation split) and
    the best recipe is then run as above.

    Args:
        recipe: A :class:`kopt.pipeline.Recipe`.

    Returns:
        The report: ``dataset``, ``techniques``, ``baseline`` and ``optimized``
        (each as :func:`kopt.pipeline.model_metrics.measure` returns, on the test
        split), ``recipe`` (resolved: every setting the run used), ``seed``,
        ``versions``, ``timings_s`` and ``files``; after a search also
        ``trials`` and ``search`` (its settings and the ``best_recipe``); with
        ``recipe.init_from``, ``init_from``: the path and the weight transfer's
        report (:meth:`kopt.transfer.TransferReport.to_dict`).

    Raises:
        ConfigError: For bad settings (unwritable outputs included), naming the
            setting and value; always before training.
        TrainingError: A training run diverged (NaN or infinite weights).
        OutputError: The report could not be written at the end; the trained
            files and a copy of the report are kept in ``export_dir``.
    """
    recipe = recipe.validate().resolved().validate()
    techniques = check_techniques(recipe)
    outputs.check_output_paths(recipe)
    if recipe.search is not None and recipe.search.get("directory"):
        outputs.check_writable_directory("search.directory", recipe.search["directory"])
    # First TensorFlow work of the run: the multi-worker strategy must come before any other.
    strategy = make_strategy(recipe.strategy, num_gpus=recipe.num_gpus, tpu=recipe.tpu)
    chief = worker_info().is_chief if recipe.strategy == "multi_worker" else True
    # Every worker restores from the chief's backups (shared storage on a real cluster).
    backups = resume.resume_root(recipe)
    if chief:
        result = _run(recipe, techniques, strategy, backups)
        resume.finish(backups)
        return result
    # Every worker trains; only the chief keeps files. The others write theirs
    # to a scratch folder, so the exports are not written twice over each other.
    scratch = tempfile.mkdtemp(prefix="kopt-worker-")
    try:
        return _run(dataclasses.replace(recipe, export_dir=scratch, report=None), techniques, strategy, backups)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(recipe, techniques, strategy, backups):
    search = None
    final = recipe
    if recipe.search is not None:
        from kopt.pipeline import tune  # Only here: it needs the optional keras_tuner.

        search = tune.search(recipe, strategy)
        final = search["best_recipe_object"]
        techniques = check_techniques(final)
    result = execute(final, techniques, strategy, export_dir=recipe.export_dir, resume_root=backups)
    result["recipe"] = recipe.to_dict()
    result["seed"] = recipe.seed
    result["versions"] = versions()
    if search is not None:
        result["trials"] = search["trials"]
        result["search"] = {key: value for key, value in search.items() if key not in ("trials", "best_recipe_object")}
        result["timings_s"]["search"] = search["seconds"]
    if recipe.report:
        outputs.write_report_or_keep(result, recipe.report, recipe.export_dir, trials=search is not None)
    return result


def versions():
    """The versions and machine a report was made with."""
    return {
        "kopt": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_tuner": _installed("keras-tuner"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }


def _installed(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
