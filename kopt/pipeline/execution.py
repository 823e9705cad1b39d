"""One pass of the pipeline: data -> model -> float training -> techniques -> export -> measure.

:func:`kopt.pipeline.run` calls it once for a plain run, and the search once
per trial (measuring on the validation split) and once for the best recipe.
"""

import dataclasses
import os
import time

import keras
import tensorflow as tf
from absl import logging

import tflite_export
from kopt.data import load_dataset
from kopt.errors import ConfigError
from kopt.models import BUILTIN_MODELS
from kopt.models import drops_channel_axis
from kopt.models import get_model
from kopt.models import pixel_scaling_layer
from kopt.pipeline import model_metrics
from kopt.pipeline import resume
from kopt.pipeline.classifier_training import train_classifier
from kopt.pipeline.context import StageContext
from kopt.pipeline.init_from import initialize_from
from kopt.training import make_reproducible
from kopt.training import precision_policy
from kopt.training import split_validation
from kopt.training import to_float32
from tflite_export.atomic import atomic_output_path
from tflite_export.cloning import copy_model
from tflite_export.export_hooks import is_quantization_aware
from tflite_export.layers import all_layers
from tflite_export.plugins import import_user_modules
from tflite_export.recurrent import looped_layers

EVALUATIONS = ("test", "validation")


def load_data(recipe):
    """Returns ``(train, validation, test, info)`` for ``recipe``.

    ``validation`` is carved from the training data when
    ``recipe.validation_split`` is above 0, else ``None``.
    """
    train, test, info = load_dataset(
        recipe.dataset,
        batch_size=recipe.batch_size,
        data_dir=recipe.data_dir,
        download=recipe.download,
        seed=recipe.seed,
        num_classes=recipe.num_classes,
        image_size=recipe.image_size,
        audio_samples=recipe.audio_samples,
    )
    validation = None
    if recipe.validation_split:
        train, validation = split_validation(
            train, recipe.validation_split, batch_size=recipe.batch_size, seed=recipe.seed
        )
    return train, validation, test, info


def _file_options(techniques):
    """``(export, layout)``: the convert options of the last stage, and the file layout any stage asks for."""
    export, layout = {"mode": "float32"}, {}
    for technique, params in techniques:
        export = technique.export_options(params)
        layout.update(technique.file_options(params))
    return export, layout


def _check_file_layout(model, export, layout):
    """Refuses, before training, an integer file with sparse weights that LiteRT could not load.

    ``tflite_export.convert`` refuses it too, but only after every stage has trained.
    """
    if not layout.get("sparse_weights") or export["mode"] not in ("int8", "int16x8"):
        return
    dense = [layer.name for layer in all_layers(model) if isinstance(layer, keras.layers.Dense)]
    if dense:
        raise ConfigError(
            "prune.sparse_weights",
            True,
            f"the {export['mode']} file would store the weights of Dense layer(s) {', '.join(dense[:3])} for a DENSIFY "
            "op, and LiteRT's XNNPACK delegate cannot prepare an integer FULLY_CONNECTED whose weights are decoded at "
            "run time (the file would not load); leave --sparse_weights out of an integer export (gzip still shrinks "
            "the zeros), or export float32",
        )


def _pixels_the_model_reads(model, info):
    """``{"input_pixels": ...}`` for a model that scales 0-255 pixels itself, fed them unscaled; else ``{}``."""
    layer = pixel_scaling_layer(model) if info.pixel_levels else None
    if layer is None:
        return {}
    logging.info(
        "Model %s scales 0-%d pixel values itself (layer %r, %s): the images are fed to it, and its files expect "
        "them, as 0-%d values, not in [0, 1].",
        model.name,
        info.pixel_levels,
        layer.name,
        type(layer).__name__,
        info.pixel_levels,
    )
    return {"input_pixels": {"range": [0, info.pixel_levels], "scaled_by": layer.name}}


def _as_pixel_values(dataset, levels):
    if dataset is None:
        return None
    return dataset.map(lambda x, y: (x * levels, y), num_parallel_calls=tf.data.AUTOTUNE)


def _import_custom_layers(recipe):
    """Imports the modules that register the model's own layers, before any model loads."""
    if recipe.custom_layers:
        try:
            names = import_user_modules(recipe.custom_layers)
        except ValueError as err:
            raise ConfigError("custom_layers", ",".join(recipe.custom_layers), str(err)) from err
        logging.info("Imported %s for the model's custom layers.", ", ".join(names))


def _use_as_given(model, recipe):
    """``epochs=0``: no float training, so the baseline is the model as it was given."""
    if recipe.model in BUILTIN_MODELS and recipe.init_from is None:
        logging.warning(
            "--epochs=0 with the built-in model %s and no --init_from: it is untrained, so the baseline and every "
            "technique start from random weights.",
            recipe.model,
        )
    logging.info("Model %s is used as given (--epochs=0): no float training, its weights untouched.", model.name)


def _drop_channel_axis(dataset):
    """``(batch, ..., 1)`` examples as ``(batch, ...)``, for a model that reads rows as a sequence."""
    if dataset is None:
        return None
    return dataset.map(lambda x, y: (tf.squeeze(x, axis=-1), y), num_parallel_calls=tf.data.AUTOTUNE)


def execute(recipe, techniques, strategy, *, export_dir, evaluation="test", save_models=True, resume_root=None):
    """Runs ``recipe`` once and measures the baseline and optimized models.

    Seeds everything first and loads the data afresh, so a pass repeats exactly
    whatever ran before it in the process.

    Args:
        recipe: A validated, resolved :class:`kopt.pipeline.Recipe`.
        techniques: ``[(Technique, params), ...]`` in order.
        strategy: The ``tf.distribute`` strategy to train under.
        export_dir: Where the ``.tflite`` (and ``.keras``) files go.
        evaluation: ``"test"`` for the report, ``"validation"`` for a search
            trial, which must never see the test split.
        save_models: Whether to save ``baseline.keras`` and ``optimized.keras``.
        resume_root: Folder for the backups of every training
            (:mod:`kopt.pipeline.resume`), or ``None`` for none.

    Returns:
        A dict with ``dataset``, ``techniques``, ``baseline``, ``optimized``,
        ``timings_s`` and ``files``; with ``recipe.init_from`` also
        ``init_from`` (:func:`kopt.pipeline.init_from.initialize_from`).
    """
    if evaluation not in EVALUATIONS:
        raise ValueError(f"evaluation must be one of {EVALUATIONS}. Received: evaluation={evaluation!r}")
    timings = {}
    started = time.perf_counter()
    make_reproducible(recipe.seed, deterministic=recipe.deterministic)
    _import_custom_layers(recipe)
    train, validation, test, info = load_data(recipe)
    scored = test if evaluation == "test" else validation
    if scored is None:
        raise ValueError(f"A {evaluation} pass needs validation_split above 0. Received: {recipe.validation_split}")
    logging.info("Dataset %s: %s", info.name, info.source)
    with precision_policy(recipe.mixed_precision):
        with strategy.scope():
            model = get_model(recipe.model, info.input_shape, info.num_classes)
        if drops_channel_axis(model, info.input_shape):
            train, validation, test = (_drop_channel_axis(data) for data in (train, validation, test))
            scored = test if evaluation == "test" else validation
            logging.info(
                "Model %s takes %s: the dataset's %s examples are fed without their channel axis.",
                model.name,
                tuple(info.input_shape[:-1]),
                tuple(info.input_shape),
            )
            info = dataclasses.replace(info, input_shape=tuple(info.input_shape[:-1]))
        pixels = _pixels_the_model_reads(model, info)
        if pixels:
            train, validation, test = (_as_pixel_values(data, info.pixel_levels) for data in (train, validation, test))
            scored = test if evaluation == "test" else validation
            info = dataclasses.replace(info, fed_as_pixels=True)
        context = StageContext(
            recipe=recipe, train=train, test=test, info=info, export_dir=export_dir, validation=validation
        )
        checked_model = model  # layer names are checked on the model each stage will receive, while known
        for technique, params in techniques:  # a teacher that will not load fails now, not after training
            technique.check_data(info, params)
            if checked_model is not None:
                technique.check_model(checked_model, params)
            if getattr(technique, "replaces_model", False):
                checked_model = technique.replacement_model(info, params)
        export, layout = _file_options(techniques)
        if checked_model is not None:  # the model the file will hold: the recipe's, or a student
            _check_file_layout(checked_model, export, layout)
        init_from = {}
        if recipe.init_from is not None:  # weights that do not fit fail here, before training
            with strategy.scope():
                init_from["init_from"] = initialize_from(model, recipe.init_from)
        # Only now: a model that fails to load leaves no folder behind.
        os.makedirs(export_dir, exist_ok=True)
        timings["setup"] = time.perf_counter() - started

        mark = time.perf_counter()
        if recipe.epochs:
            with strategy.scope(), resume.phase(resume_root, "baseline"):
                train_classifier(model, train, config=recipe.training_config(), validation=validation)
        else:
            _use_as_given(model, recipe)
        timings["baseline_training"] = time.perf_counter() - mark
        files = {}
        # The exported file is float32 whatever the training precision.
        baseline_model = _local(to_float32(model), strategy)
        if save_models:
            files["baseline_keras"] = _save_model(baseline_model, os.path.join(export_dir, "baseline.keras"))
        mark = time.perf_counter()
        baseline = model_metrics.measure(baseline_model, scored, os.path.join(export_dir, "baseline.tflite"))
        timings["baseline_export"] = time.perf_counter() - mark

        optimized_model = model
        stage_reports = {}
        for index, (technique, params) in enumerate(techniques, start=1):
            mark = time.perf_counter()
            logging.info("Applying technique %s with %s.", technique.name, params)
            with strategy.scope(), resume.phase(resume_root, f"{index}-{technique.name}"):
                optimized_model = technique.apply(optimized_model, context, params)
            optimized_model = technique.strip(optimized_model)
            timings[f"technique_{technique.name}"] = time.perf_counter() - mark
            # A stage with a report of its own (auto's pareto front) adds it under its name.
            if getattr(technique, "report_entry", None) is not None:
                stage_reports[technique.name] = technique.report_entry
    optimized_model = _local(to_float32(optimized_model), strategy)
    if save_models:
        files["optimized_keras"] = _save_model(optimized_model, os.path.join(export_dir, "optimized.keras"))
    mark = time.perf_counter()
    calibration = {"representative_dataset": train if export["mode"] in ("int8", "int16x8") else None}
    looped = looped_layers(optimized_model)
    if export["mode"] == "int8" and looped and is_quantization_aware(optimized_model):
        # The loop stays float by design; calibrating it breaks the grids QAT (or kopt's PTQ) set around it.
        logging.info(
            "The int8 file takes its ranges from the quantization-aware model only: the loop of %s stays float.",
            ", ".join(looped[:5]),
        )
        calibration["representative_dataset"] = None
    try:
        optimized = model_metrics.measure(
            optimized_model,
            scored,
            os.path.join(export_dir, "optimized.tflite"),
            # A technique may say that its file takes no converter calibration (representative_dataset=None).
            **{**calibration, **export},
            **layout,
        )
    except tflite_export.ConversionError as err:
        raise tflite_export.ConversionError(
            _kept_after_failed_export(err, files.get("optimized_keras"), export)
        ) from err
    timings["optimized_export"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    files["baseline_tflite"] = baseline["tflite_path"]
    files["optimized_tflite"] = optimized["tflite_path"]
    return {
        "dataset": info.to_dict(),
        "techniques": [technique.name for technique, _ in techniques],
        "baseline": baseline,
        "optimized": optimized,
        "timings_s": {key: round(value, 3) for key, value in timings.items()},
        "files": files,
        **init_from,
        **pixels,
        **stage_reports,
    }


def _kept_after_failed_export(err, keras_path, export):
    """The export error, with where the trained model is and how to export it again."""
    if keras_path is None:
        return str(err)
    command = f"python -m tflite_export {keras_path} optimized.tflite --mode={export['mode']}"
    if export.get("inference_input_type", "float32") != "float32":
        command += f" --io_type={export['inference_input_type']}"
    return (
        f"{err}. The trained model is saved: {keras_path}; nothing of the training is lost. Once the cause "
        f"is fixed, export it again with: {command}"
    )


def _local(model, strategy):
    """A single-device copy of a model trained across workers, for evaluation and export.

    Keras' predict, like its fit, fails under the multi-worker strategy; the
    copy holds the same values in ordinary variables.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return model
    return copy_model(model)


def _save_model(model, path):
    with atomic_output_path(path) as tmp:
        model.save(tmp)
    return os.path.abspath(path)
