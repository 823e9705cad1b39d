"""The driver: data -> model -> float training -> techniques -> strip -> export -> report."""

import dataclasses
import os
import platform
import shutil
import tempfile
import time

import keras
import tensorflow as tf
from absl import logging

from kopt.data import load_dataset
from kopt.distribute import make_strategy
from kopt.distribute import worker_info
from kopt.models import get_model
from kopt.pipeline import measure
from kopt.pipeline import stages  # noqa: F401  (registers the built-in techniques)
from kopt.pipeline import report as report_lib
from kopt.pipeline.context import StageContext
from kopt.pipeline.techniques import get_technique
from kopt.pipeline.training import train_classifier
from kopt.utils.atomic import atomic_output_path
from kopt.version import __version__


def run(recipe):
    """Runs a whole recipe and returns its report as a dict.

    Every check that can fail on input (settings, techniques, dataset, model file)
    runs before training starts. Trained models are saved atomically as
    ``baseline.keras`` and ``optimized.keras`` in ``recipe.export_dir``, beside
    ``baseline.tflite`` and ``optimized.tflite``; other files there are left alone.

    Args:
        recipe: A :class:`kopt.pipeline.Recipe`.

    Returns:
        The report: ``dataset``, ``techniques``, ``baseline`` and ``optimized``
        (each as :func:`kopt.pipeline.measure.measure` returns), ``recipe``,
        ``versions``, ``timings_s`` and ``files``.

    Raises:
        ConfigError: For bad settings, naming the setting and value.
    """
    recipe.validate()
    techniques = [(get_technique(spec.name), spec.params) for spec in recipe.techniques]
    for technique, params in techniques:
        technique.check(params)
    # First TensorFlow work of the run: the multi-worker strategy must come before any other.
    strategy = make_strategy(recipe.strategy, num_gpus=recipe.num_gpus, tpu=recipe.tpu)
    chief = worker_info().is_chief if recipe.strategy == "multi_worker" else True
    if chief:
        return _run(recipe, techniques, strategy)
    # Every worker trains; only the chief keeps files. The others write theirs
    # to a scratch folder, so the exports are not written twice over each other.
    scratch = tempfile.mkdtemp(prefix="kopt-worker-")
    try:
        return _run(dataclasses.replace(recipe, export_dir=scratch, report=None), techniques, strategy)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(recipe, techniques, strategy):
    timings = {}
    started = time.perf_counter()
    keras.utils.set_random_seed(recipe.seed)
    train, test, info = load_dataset(
        recipe.dataset,
        batch_size=recipe.batch_size,
        data_dir=recipe.data_dir,
        download=recipe.download,
        seed=recipe.seed,
    )
    logging.info("Dataset %s: %s", info.name, info.source)
    with strategy.scope():
        model = get_model(recipe.model, info.input_shape, info.num_classes)
    export_dir = recipe.export_dir
    os.makedirs(export_dir, exist_ok=True)
    context = StageContext(recipe=recipe, train=train, test=test, info=info, export_dir=export_dir)
    timings["setup"] = time.perf_counter() - started

    mark = time.perf_counter()
    with strategy.scope():
        train_classifier(model, train, epochs=recipe.epochs, learning_rate=recipe.learning_rate)
    timings["baseline_training"] = time.perf_counter() - mark
    files = {"baseline_keras": _save_model(model, os.path.join(export_dir, "baseline.keras"))}
    mark = time.perf_counter()
    baseline = measure.measure(_local(model, strategy), test, os.path.join(export_dir, "baseline.tflite"))
    timings["baseline_export"] = time.perf_counter() - mark

    optimized_model = model
    export = {"mode": "float32"}
    for technique, params in techniques:
        mark = time.perf_counter()
        logging.info("Applying technique %s with %s.", technique.name, params)
        with strategy.scope():
            optimized_model = technique.apply(optimized_model, context, params)
        optimized_model = technique.strip(optimized_model)
        export = technique.export_options(params)
        timings[f"technique_{technique.name}"] = time.perf_counter() - mark
    files["optimized_keras"] = _save_model(optimized_model, os.path.join(export_dir, "optimized.keras"))
    mark = time.perf_counter()
    optimized = measure.measure(
        _local(optimized_model, strategy),
        test,
        os.path.join(export_dir, "optimized.tflite"),
        representative_dataset=train if export["mode"] in ("int8", "int16x8") else None,
        **export,
    )
    timings["optimized_export"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    files["baseline_tflite"] = baseline["tflite_path"]
    files["optimized_tflite"] = optimized["tflite_path"]

    result = {
        "dataset": info.to_dict(),
        "techniques": [technique.name for technique, _ in techniques],
        "baseline": baseline,
        "optimized": optimized,
        "recipe": recipe.to_dict(),
        "versions": _versions(),
        "timings_s": {key: round(value, 3) for key, value in timings.items()},
        "files": files,
    }
    if recipe.report:
        json_path, png_path = report_lib.write_report(result, recipe.report)
        result["files"]["report_json"] = os.path.abspath(json_path)
        result["files"]["report_png"] = os.path.abspath(png_path)
    return result


def _local(model, strategy):
    """A single-device copy of a model trained across workers, for evaluation and export.

    Keras' predict, like its fit, fails under the multi-worker strategy; the
    copy holds the same values in ordinary variables.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return model
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _save_model(model, path):
    with atomic_output_path(path) as tmp:
        model.save(tmp)
    return os.path.abspath(path)


def _versions():
    return {
        "kopt": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
