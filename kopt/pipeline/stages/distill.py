"""The ``distill`` stage: train a small student from the trained model.

The model the stage receives (the float baseline the driver trained) is the
teacher, unless ``teacher`` names a ``.keras`` file. The student (a fresh
built-in model, or a ``.keras`` file of your own architecture) is trained with
:class:`kopt.distillation.Distiller`, and the trained student is what later
stages (``prune``, ``qat``...) and the export receive.

Params (recipe keys under ``distill``; flags ``--distill``, ``--teacher``,
``--student``, ``--temperature``, ``--alpha``; ``--epochs`` and
``--learning_rate`` as for the float training):

* ``student``: a built-in model name (default ``"tiny_cnn"``, about a fiftieth of
  ``small_cnn``'s parameters; built-in students take images), or a path to a
  ``.keras`` model that reads the same examples as the teacher and gives one
  score per class. A file's weights are where the student starts: save the
  model untrained to distil from scratch, or trained (a smaller pretrained
  network) to start from what it knows. Later stages' layer names are checked
  on the student, before the baseline trains. Where the run feeds 0-255 pixel
  values (the model scales its own pixels), a built-in student gets a
  ``Rescaling(1/255)`` first layer, and a student file must scale them too.
* ``teacher``: ``None`` (the trained baseline) or a path to a ``.keras`` classifier.
* ``temperature``: softening temperature ``T > 0`` (default 4).
* ``alpha``: weight of the hard-label loss in ``[0, 1]`` (default 0.1).
* ``distillation``: ``"soft"`` (default; the teacher's softened distribution)
  or ``"hard"`` (the teacher's top class as labels).
* ``epochs``, ``learning_rate`` and the other training keys of
  :mod:`kopt.pipeline.stages.fine_tune`: the student's training; the rate
  defaults to the float one, and the student, trained as a new model, also takes
  the recipe's ``warmup_epochs``.
"""

import dataclasses
import os
from typing import ClassVar

from absl import logging

from kopt.distillation import Distiller
from kopt.distillation.checks import check_models
from kopt.distillation.distiller import DISTILLATION_KINDS
from kopt.errors import ConfigError
from kopt.models import BUILTIN_MODELS
from kopt.models import accuracy_metric
from kopt.models import drops_channel_axis
from kopt.models import get_model
from kopt.models import pixel_scaling_layer
from kopt.models import with_pixel_scaling
from kopt.pipeline.classifier_training import settle_batch_norm
from kopt.pipeline.settings import Switch
from kopt.pipeline.settings import setting
from kopt.pipeline.stages.fine_tune import FineTuneSettings
from kopt.pipeline.stages.fine_tune import FineTuningTechnique
from kopt.pipeline.stages.fine_tune import stage_training_config
from kopt.pipeline.stages.fine_tune import steps_per_epoch
from kopt.pipeline.techniques import register_technique
from kopt.training import training_objects


@dataclasses.dataclass(frozen=True)
class DistillSettings(FineTuneSettings):
    """The ``distill`` params (see the module docstring)."""

    flag_group: ClassVar[str] = "Distillation"
    switch: ClassVar[Switch] = Switch(
        "distill", "Distil the trained model (or --teacher) into a small --student (built-in, or a .keras file)."
    )

    # The student trains as a new model: --epochs and --learning_rate, as the float model.
    epochs: int = setting(1, kind=int, checked=False, flag="epochs")
    learning_rate: float | None = setting(None, kind=float, checked=False, flag="learning_rate")
    teacher: str | None = setting(
        None, kind=str, checked=False, flag="teacher",
        help="With --distill: a .keras teacher instead of the trained baseline.",
    )  # fmt: skip
    student: str = setting(
        "tiny_cnn", kind=str, checked=False, flag="student",
        help=f"With --distill: a built-in student ({', '.join(sorted(BUILTIN_MODELS))}) or a .keras model file "
        "(its weights are the starting point).",
    )  # fmt: skip
    temperature: float = setting(
        4.0, kind=float, low=0, open_bounds=True, flag="temperature",
        help="With --distill: the softening temperature T.", search={"min": 1.0, "max": 8.0},
    )  # fmt: skip
    alpha: float = setting(
        0.1, kind=float, low=0, high=1, example=0.1, flag="alpha",
        help="With --distill: weight of the hard-label loss (the soft loss gets 1-alpha).",
        search={"min": 0.0, "max": 0.5},
    )  # fmt: skip
    distillation: str = setting(
        "soft", kind=str, choices=DISTILLATION_KINDS, flag="distillation",
        help="With --distill: the teacher's softened outputs, or its top class as labels.",
    )  # fmt: skip


@register_technique
class Distill(FineTuningTechnique):
    """Distils the trained model (or a given teacher) into a small student."""

    name = "distill"
    replaces_model = True  # later stages receive the student, not the recipe's model
    settings = DistillSettings

    def training_config(self, recipe, params):
        return stage_training_config(recipe, self.name, params, warmup=True)

    def check(self, params):
        if params.get("epochs") == 0:  # --epochs=0 keeps the given model; the student still has to learn
            raise ConfigError(
                "distill.epochs", 0, "the student trains from scratch for --epochs (distill.epochs); give at least 1"
            )
        super().check(params)
        teacher = params.get("teacher")
        if teacher is not None:
            if not isinstance(teacher, str) or not teacher.endswith(".keras"):
                raise ConfigError("distill.teacher", teacher, "must be a path ending in .keras")
            if not os.path.isfile(teacher):
                raise ConfigError("distill.teacher", teacher, f"file not found: {os.path.abspath(teacher)}")
        student = params.get("student", self.values({}).student)
        if not isinstance(student, str) or (student not in BUILTIN_MODELS and not student.endswith(".keras")):
            raise ConfigError(
                "distill.student",
                student,
                f"must be a built-in model ({', '.join(sorted(BUILTIN_MODELS))}) or a path ending in .keras",
            )
        if student not in BUILTIN_MODELS and not os.path.isfile(student):
            raise ConfigError("distill.student", student, f"file not found: {os.path.abspath(student)}")

    def check_data(self, info, params):
        # Before the baseline trains, not after: the files load, and the student reads the teacher's examples.
        values = self.values(params)
        self._checked = {
            "teacher": None if values.teacher is None else _load_teacher(values.teacher, info),
            "student": _student(values.student, info),
        }

    def check_model(self, model, params):
        checked = getattr(self, "_checked", None)
        if checked is None:
            return
        # A softmax ending, different classes or a student larger than the teacher: known before training.
        teacher = checked["teacher"] or model
        try:
            check_models(checked["student"], teacher, allow_larger_student=False)
        except ValueError as err:
            raise _pair_error(err, self.values(params), teacher) from err

    def replacement_model(self, info, params):
        checked = getattr(self, "_checked", None)
        return checked["student"] if checked is not None else _student(self.values(params).student, info)

    def apply(self, model, context, params):
        config = self.training_config(context.recipe, params)
        values = self.values(params)
        teacher = model
        if values.teacher is not None:
            teacher = _load_teacher(values.teacher, context.info)
        student = _student(values.student, context.info, announce=True)
        try:
            distiller = Distiller(
                student, teacher, alpha=values.alpha, temperature=values.temperature, distillation=values.distillation
            )
        except ValueError as err:  # a teacher ending in softmax, or smaller than the student
            raise _pair_error(err, values, teacher) from err
        optimizer, callbacks = training_objects(config, steps_per_epoch=steps_per_epoch(context))
        distiller.compile(optimizer=optimizer, metrics=[accuracy_metric(student)])
        # The dataset shuffles itself; Keras' own shuffle flag does not apply to datasets.
        distiller.fit(
            context.train,
            epochs=config.epochs,
            callbacks=callbacks,
            validation_data=context.validation,
            shuffle=False,
            verbose="auto",
        )
        settle_batch_norm(distiller.student, context.train, config)
        return distiller.student


def _pair_error(err, values, teacher):
    """The ConfigError for a student and teacher that cannot be distilled, keyed by the one to change."""
    if "swapped" in str(err) or "the student ends" in str(err) or "student has no" in str(err):
        return ConfigError("distill.student", values.student, str(err))
    return ConfigError("distill.teacher", values.teacher or teacher.name, str(err))


def _student(name, info, *, announce=False):
    """The untrained built-in student, or the student file loaded; checked against the examples the teacher reads."""
    if name in BUILTIN_MODELS and len(info.input_shape) != 3:
        raise ConfigError(
            "distill.student",
            name,
            f"the built-in students take images, and this dataset's examples are {tuple(info.input_shape)} "
            "(token ids, features or sequences); pass --student=FILE.keras, a student model that reads them",
        )
    try:
        student = get_model(name, info.input_shape, info.num_classes)
    except ConfigError as err:
        raise ConfigError("distill.student", name, err.reason) from err
    if drops_channel_axis(student, info.input_shape):  # the teacher's data keeps its channel axis
        raise ConfigError(
            "distill.student",
            name,
            f"takes inputs of shape {tuple(student.inputs[0].shape[1:])} but the teacher reads "
            f"{tuple(info.input_shape)}; the student must read the same examples as the teacher",
        )
    if name in BUILTIN_MODELS and info.fed_as_pixels:
        student = with_pixel_scaling(student, info.pixel_levels)
        (logging.info if announce else logging.debug)(
            "The built-in student %s reads 0-%d pixel values, as the teacher does: it begins with Rescaling(1/%d).",
            name,
            info.pixel_levels,
            info.pixel_levels,
        )
    _check_pixels(student, info, "distill.student", name)
    return student


def _load_teacher(path, info):
    try:
        teacher = get_model(path, info.input_shape, info.num_classes)
    except ConfigError as err:
        raise ConfigError("distill.teacher", path, err.reason) from err
    _check_pixels(teacher, info, "distill.teacher", path)
    return teacher


def _check_pixels(model, info, key, value):
    """Refuses a model that would read the run's images in another range than the model trained first.

    The run feeds 0-255 pixel values when the recipe's model scales its own
    (``info.fed_as_pixels``), else ``[0, 1]`` images; a teacher or student file
    built for the other range would scale them twice, or not at all.
    """
    if not info.pixel_levels:
        return  # features or float images: their range is the data's own
    scaling = pixel_scaling_layer(model)
    if info.fed_as_pixels and scaling is None:
        raise ConfigError(
            key,
            value,
            f"the run feeds 0-{info.pixel_levels} pixel values, because the recipe's model scales its own pixels, "
            f"and this model does not scale them (it would read them {info.pixel_levels} times too large); begin "
            f"it with keras.layers.Rescaling(1/{info.pixel_levels})",
        )
    if not info.fed_as_pixels and scaling is not None:
        raise ConfigError(
            key,
            value,
            f"this model scales 0-{info.pixel_levels} pixel values itself (layer {scaling.name!r}), and the run "
            f"feeds [0, 1] images, because the recipe's model does not scale its pixels: it would scale them twice; "
            f"remove the layer, or give --model a model that scales its pixels too",
        )
