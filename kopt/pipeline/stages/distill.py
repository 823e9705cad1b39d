"""The ``distill`` stage: train a small built-in student from the trained model.

The model the stage receives (the float baseline the driver trained) is the
teacher, unless ``teacher`` names a ``.keras`` file. A fresh built-in student is
trained from scratch with :class:`kopt.distillation.Distiller`, and the trained
student is what later stages (``prune``, ``qat``...) and the export receive.

Params (recipe keys under ``distill``; flags ``--distill``, ``--teacher``,
``--student``, ``--temperature``, ``--alpha``; ``--epochs`` and
``--learning_rate`` as for the float training):

* ``student``: a built-in model name (default ``"tiny_cnn"``, about a fiftieth of
  ``small_cnn``'s parameters).
* ``teacher``: ``None`` (the trained baseline) or a path to a ``.keras`` classifier.
* ``temperature``: softening temperature ``T > 0`` (default 4).
* ``alpha``: weight of the hard-label loss in ``[0, 1]`` (default 0.1).
* ``distillation``: ``"soft"`` (default; the teacher's softened distribution)
  or ``"hard"`` (the teacher's top class as labels).
* ``epochs``, ``learning_rate`` and the other training keys of
  :mod:`kopt.pipeline.stages.fine_tune`: the student's training; the rate
  defaults to the float one, and the student, trained from scratch, also takes
  the recipe's ``warmup_epochs``.
"""

import os

import keras

from kopt.distillation import Distiller
from kopt.distillation.distiller import DISTILLATION_KINDS
from kopt.errors import ConfigError
from kopt.models import BUILTIN_MODELS
from kopt.models import get_model
from kopt.pipeline.recipe import require_positive_number
from kopt.pipeline.stages.fine_tune import FineTuningTechnique
from kopt.pipeline.stages.fine_tune import check_fine_tune
from kopt.pipeline.stages.fine_tune import stage_training_config
from kopt.pipeline.stages.fine_tune import steps_per_epoch
from kopt.pipeline.techniques import register_technique
from kopt.training import training_objects

DEFAULT_STUDENT = "tiny_cnn"
DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.1


@register_technique
class Distill(FineTuningTechnique):
    """Distils the trained model (or a given teacher) into a small built-in student."""

    name = "distill"
    own_param_keys = ("student", "teacher", "temperature", "alpha", "distillation")

    def training_config(self, recipe, params):
        return stage_training_config(recipe, self.name, params, warmup=True)

    def check(self, params):
        check_fine_tune(self.name, params)
        student = params.get("student", DEFAULT_STUDENT)
        if student not in BUILTIN_MODELS:
            raise ConfigError(
                "distill.student", student, f"must be a built-in model: {', '.join(sorted(BUILTIN_MODELS))}"
            )
        teacher = params.get("teacher")
        if teacher is not None:
            if not isinstance(teacher, str) or not teacher.endswith(".keras"):
                raise ConfigError("distill.teacher", teacher, "must be a path ending in .keras")
            if not os.path.isfile(teacher):
                raise ConfigError("distill.teacher", teacher, f"file not found: {os.path.abspath(teacher)}")
        require_positive_number("distill.temperature", params.get("temperature", DEFAULT_TEMPERATURE))
        alpha = params.get("alpha", DEFAULT_ALPHA)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ConfigError("distill.alpha", alpha, "must be a number in [0, 1], e.g. 0.1")
        kind = params.get("distillation", "soft")
        if kind not in DISTILLATION_KINDS:
            raise ConfigError("distill.distillation", kind, f"must be one of {', '.join(DISTILLATION_KINDS)}")

    def check_data(self, info, params):
        if params.get("teacher") is not None:
            _load_teacher(params["teacher"], info)

    def apply(self, model, context, params):
        config = self.training_config(context.recipe, params)
        teacher = model
        if params.get("teacher") is not None:
            teacher = _load_teacher(params["teacher"], context.info)
        student_name = params.get("student", DEFAULT_STUDENT)
        student = get_model(student_name, context.info.input_shape, context.info.num_classes)
        try:
            distiller = Distiller(
                student,
                teacher,
                alpha=params.get("alpha", DEFAULT_ALPHA),
                temperature=params.get("temperature", DEFAULT_TEMPERATURE),
                distillation=params.get("distillation", "soft"),
            )
        except ValueError as err:  # a teacher ending in softmax, or smaller than the student
            key, value = ("distill.teacher", params.get("teacher") or teacher.name)
            if "swapped" in str(err):
                key, value = "distill.student", student_name
            raise ConfigError(key, value, str(err)) from err
        optimizer, callbacks = training_objects(config, steps_per_epoch=steps_per_epoch(context))
        distiller.compile(optimizer=optimizer, metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        # The dataset shuffles itself; Keras' own shuffle flag does not apply to datasets.
        distiller.fit(
            context.train,
            epochs=config.epochs,
            callbacks=callbacks,
            validation_data=context.validation,
            shuffle=False,
            verbose="auto",
        )
        return distiller.student


def _load_teacher(path, info):
    try:
        return get_model(path, info.input_shape, info.num_classes)
    except ConfigError as err:
        raise ConfigError("distill.teacher", path, err.reason) from err
