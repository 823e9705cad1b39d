"""Argument checks of :class:`kopt.distillation.Distiller`, run before any training.

Example:

>>> check_feature_layers([("teacher_conv", "student_conv")])
[('teacher_conv', 'student_conv')]
"""

import warnings

import keras

from kopt.models import output_activation
from tflite_export.inference import layers_active_by_default

__all__ = ["check_feature_layers", "check_models"]


def check_models(student: keras.Model, teacher: keras.Model, allow_larger_student: bool) -> None:
    """Raises ValueError, naming the model and the value, if ``student`` and ``teacher`` cannot be distilled.

    Warns if the student augments its own input (augmentation layers inside it),
    which the teacher does not see.
    """
    for who, model in (("student", student), ("teacher", teacher)):
        if not isinstance(model, keras.Model):
            raise ValueError(f"`{who}` must be a keras.Model. Received: {who}={model!r}")
        if not model.built:
            raise ValueError(
                f"`{who}` must be built (call it on a batch, or give it an Input). Received: {who}={model.name!r}"
            )
        ending = output_activation(model) if getattr(model, "layers", None) and model.inputs else None
        if ending is not None:
            raise ValueError(
                f"Distillation needs logits, but the {who} ends in a {ending}. Remove the {ending} (keep it for "
                f"inference only). Received: {who}={model.name!r}"
            )
    if not student.trainable_weights:
        raise ValueError(
            f"The student has no trainable weights, so distillation would not change it (is "
            f"`student.trainable` False, or was it copied from a frozen model?). Received: student={student.name!r} "
            f"with trainable={student.trainable}"
        )
    if student is teacher:
        raise ValueError(f"`student` and `teacher` are the same model. Received: student=teacher={student.name!r}")
    student_params, teacher_params = student.count_params(), teacher.count_params()
    if student_params > teacher_params and not allow_larger_student:
        raise ValueError(
            f"The student ({student.name!r}, {student_params:,} parameters) is larger than the teacher "
            f"({teacher.name!r}, {teacher_params:,}): were they swapped? Distiller(student, teacher) takes the "
            "student first; pass allow_larger_student=True if this is meant. "
            f"Received: student={student.name!r}, teacher={teacher.name!r}"
        )
    augmenting = layers_active_by_default(student)
    if augmenting:
        names = ", ".join(f"{layer.name!r} ({type(layer).__name__})" for layer in augmenting)
        warnings.warn(
            f"The student {student.name!r} holds augmentation layers ({names}): it trains on augmented inputs while "
            "the teacher, called with training=False, sees the same batch unaugmented, so their predictions are "
            "matched on different images. Augment in the input pipeline (dataset.map) instead, so that both see "
            "the same view.",
            stacklevel=3,
        )
    student_out, teacher_out = _output_shape(student), _output_shape(teacher)
    if student_out is not None and teacher_out is not None and _classes(student_out) != _classes(teacher_out):
        raise ValueError(
            f"Student and teacher must predict the same classes; their outputs are {student_out} and "
            f"{teacher_out}. Received: student={student.name!r}, teacher={teacher.name!r}"
        )


def _classes(output_shape):
    # One logit is a binary classifier's, of class 1 (see kopt.models.two_class_logits).
    return 2 if output_shape[-1] == 1 else output_shape[-1]


def _output_shape(model):
    outputs = getattr(model, "outputs", None)
    return tuple(outputs[0].shape) if outputs and len(outputs) == 1 else None


def check_feature_layers(feature_layers: object) -> list[tuple[str, str]]:
    """``feature_layers`` as a list of ``(teacher_layer_name, student_layer_name)`` pairs, or ValueError."""
    if feature_layers is None:
        return []
    pairs = []
    for pair in feature_layers if isinstance(feature_layers, (list, tuple)) else [None]:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(n, str) for n in pair):
            raise ValueError(
                "`feature_layers` must be a list of (teacher_layer_name, student_layer_name) pairs. "
                f"Received: feature_layers={feature_layers!r}"
            )
        pairs.append(tuple(pair))
    return pairs
