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
* ``epochs``, ``learning_rate``: the student's training; the rate defaults to the
  float one.
"""

import os

import keras

from kopt.distillation import Distiller
from kopt.errors import ConfigError
from kopt.models import BUILTIN_MODELS
from kopt.models import get_model
from kopt.pipeline.recipe import require_positive_number
from kopt.pipeline.stages.fine_tune import check_fine_tune
from kopt.pipeline.stages.fine_tune import fine_tune_settings
from kopt.pipeline.techniques import Technique
from kopt.pipeline.techniques import register_technique

DEFAULT_STUDENT = "tiny_cnn"
DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.1


@register_technique
class Distill(Technique):
    """Distils the trained model (or a given teacher) into a small built-in student."""

    name = "distill"

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

    def apply(self, model, context, params):
        epochs, learning_rate = fine_tune_settings(context, params)
        teacher = model
        if params.get("teacher") is not None:
            try:
                teacher = get_model(params["teacher"], context.info.input_shape, context.info.num_classes)
            except ConfigError as err:
                raise ConfigError("distill.teacher", params["teacher"], err.reason) from err
        student_name = params.get("student", DEFAULT_STUDENT)
        student = get_model(student_name, context.info.input_shape, context.info.num_classes)
        try:
            distiller = Distiller(
                student,
                teacher,
                alpha=params.get("alpha", DEFAULT_ALPHA),
                temperature=params.get("temperature", DEFAULT_TEMPERATURE),
            )
        except ValueError as err:  # a teacher ending in softmax, or smaller than the student
            key, value = ("distill.teacher", params.get("teacher") or teacher.name)
            if "swapped" in str(err):
                key, value = "distill.student", student_name
            raise ConfigError(key, value, str(err)) from err
        distiller.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
        # The dataset shuffles itself; Keras' own shuffle flag does not apply to datasets.
        distiller.fit(context.train, epochs=epochs, shuffle=False, verbose="auto")
        return distiller.student
