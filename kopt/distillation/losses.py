"""The maths of knowledge distillation: soft targets and the softened KL divergence.

Hinton et al. (2015) train a student on the teacher's class probabilities at a
temperature ``T``, ``softmax(logits / T)``, which keep the teacher's view of how
alike the wrong classes are. The gradients of the soft term shrink as ``1 / T^2``,
so the term is multiplied by ``T^2`` to keep its weight independent of ``T``:

    L = alpha * CE(y, s) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))

with ``s`` and ``t`` the student's and teacher's logits.
"""

from typing import Any

import keras

__all__ = ["SoftTargetKL", "check_temperature", "soft_targets", "softened_kl_divergence"]


def check_temperature(temperature: float, *, who: str = "temperature") -> float:
    """Raises ``ValueError`` unless ``temperature`` is a positive number.

    Args:
        temperature: The value to check.
        who: The argument name used in the message.

    Returns:
        ``temperature`` as a float.
    """
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < float("inf"):
        raise ValueError(f"`{who}` must be a finite positive number. Received: {who}={temperature!r}")
    return float(temperature)


def soft_targets(logits: Any, temperature: float) -> Any:
    """Class probabilities softened by ``temperature``: ``softmax(logits / T)``.

    Args:
        logits: ``(batch, classes)`` scores.
        temperature: ``T > 0``; above 1 flattens the distribution.

    Returns:
        Probabilities of the same shape.

    Example:

    >>> import numpy as np
    >>> p = soft_targets(np.array([[2.0, 0.0]]), 2.0)
    >>> [round(float(v), 4) for v in keras.ops.convert_to_numpy(p)[0]]
    [0.7311, 0.2689]
    """
    temperature = check_temperature(temperature)
    return keras.ops.softmax(keras.ops.divide(keras.ops.convert_to_tensor(logits), temperature), axis=-1)


def softened_kl_divergence(teacher_logits: Any, student_logits: Any, temperature: float) -> Any:
    """Per-example ``T^2 * KL(softmax(t / T) || softmax(s / T))``.

    Computed from log-softmax, so it stays finite where a probability
    underflows to zero (the clipped-probability KL of ``keras.losses`` does not
    differentiate there).

    Args:
        teacher_logits: ``(batch, classes)`` teacher scores ``t``; no gradient is
            taken through them.
        student_logits: ``(batch, classes)`` student scores ``s``.
        temperature: ``T > 0``.

    Returns:
        A ``(batch,)`` tensor of non-negative losses.

    Example:

    >>> import numpy as np
    >>> logits = np.array([[3.0, 1.0, 0.0]])
    >>> float(softened_kl_divergence(logits, logits, 4.0)[0])
    0.0
    """
    temperature = check_temperature(temperature)
    teacher_logits = keras.ops.stop_gradient(keras.ops.convert_to_tensor(teacher_logits))
    student_logits = keras.ops.convert_to_tensor(student_logits)
    teacher_log_probs = keras.ops.log_softmax(keras.ops.divide(teacher_logits, temperature), axis=-1)
    student_log_probs = keras.ops.log_softmax(keras.ops.divide(student_logits, temperature), axis=-1)
    teacher_probs = keras.ops.exp(teacher_log_probs)
    kl = keras.ops.sum(teacher_probs * (teacher_log_probs - student_log_probs), axis=-1)
    # KL is never negative; rounding can make identical rows a hair below zero.
    return keras.ops.maximum(kl, 0.0) * (temperature * temperature)


@keras.saving.register_keras_serializable(package="kopt")
class SoftTargetKL(keras.losses.Loss):
    """The soft-target loss as a Keras loss: ``y_true`` teacher logits, ``y_pred`` student logits.

    It is :func:`softened_kl_divergence` averaged over the batch (Keras'
    ``"sum_over_batch_size"`` reduction), i.e. already scaled by ``T^2``.

    Args:
        temperature: ``T > 0``.
        reduction: A Keras loss reduction.
        name: The loss name.

    Raises:
        ValueError: If ``temperature`` is not a positive number.

    Example:

    >>> import numpy as np
    >>> loss = SoftTargetKL(temperature=2.0)
    >>> round(float(loss(np.array([[2.0, 0.0]]), np.array([[0.0, 2.0]]))), 4)
    1.8485
    """

    def __init__(
        self, temperature: float = 4.0, reduction: str | None = "sum_over_batch_size", name: str = "soft_target_kl"
    ):
        super().__init__(reduction=reduction, name=name)
        self.temperature = check_temperature(temperature)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return softened_kl_divergence(y_true, y_pred, self.temperature)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}
