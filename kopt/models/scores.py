"""What a classifier's output holds, and the loss, metric and predictions that read it.

A classifier ends in one score per class (logits, or probabilities after a
softmax), or, for two classes, in one score: the logit of class 1, or its
probability after a sigmoid (``Dense(1, activation="sigmoid")``, as Keras'
binary tutorials build it). Training, Taylor importance, ``kopt.auto``'s
measurements and distillation all read the output through these functions, so
a one-score model is trained with binary cross-entropy and scored by its
threshold instead of by an argmax over one column, which would call every
example class 0.

Example:

>>> import numpy as np
>>> binary = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
>>> output_activation(binary), is_one_score(binary)
('sigmoid', True)
>>> predicted_classes(np.array([[0.2], [0.7]]), probabilities=True).tolist()
[0, 1]
>>> type(classification_loss(binary)).__name__
'BinaryCrossentropy'
"""

from typing import Any

import keras
import numpy as np

__all__ = [
    "accuracy_metric",
    "classification_loss",
    "is_one_score",
    "output_activation",
    "outputs_probabilities",
    "predicted_classes",
    "two_class_logits",
]

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


def output_activation(model: keras.Model) -> str | None:
    """The activation that ends ``model``: ``"softmax"``, ``"sigmoid"`` or ``None``.

    Reads the last layer (a ``Softmax`` layer, or any layer's ``activation``), looking
    through wrappers (pruning, quantization) to the layer they wrap; any other
    activation, ``"linear"`` included, is ``None``.

    Example:

    >>> logits = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> output_activation(logits) is None
    True
    """
    last = model.layers[-1] if model.layers else None
    while isinstance(last, keras.layers.Wrapper):
        last = last.layer
    if isinstance(last, keras.layers.Softmax):
        return "softmax"
    name = getattr(getattr(last, "activation", None), "__name__", "")
    return name if name in _PROBABILITY_ACTIVATIONS else None


def outputs_probabilities(model: keras.Model) -> bool:
    """Whether the model's output layer applies softmax or sigmoid (else it emits logits).

    Args:
        model: A functional or Sequential ``keras.Model``.

    Returns:
        ``True`` if the last layer is a ``Softmax`` layer or has ``activation="softmax"``
        or ``"sigmoid"``; a wrapper (pruning, quantization) is looked through to the
        layer it wraps.
    """
    return output_activation(model) is not None


def is_one_score(model: keras.Model) -> bool:
    """Whether ``model`` has one output of one score per example: a two-class classifier's."""
    outputs = getattr(model, "outputs", None) or []
    return len(outputs) == 1 and len(outputs[0].shape) >= 2 and outputs[0].shape[-1] == 1


def classification_loss(model: keras.Model) -> keras.losses.Loss:
    """The cross-entropy that trains ``model`` on integer class labels.

    Sparse categorical cross-entropy for one score per class; binary cross-entropy
    for one score per example (labels 0 and 1). Each reads logits or
    probabilities as the output layer gives them.

    Example:

    >>> softmax = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> loss = classification_loss(softmax)
    >>> type(loss).__name__, loss.get_config()["from_logits"]
    ('SparseCategoricalCrossentropy', False)
    """
    from_logits = not outputs_probabilities(model)
    if is_one_score(model):
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def accuracy_metric(model: keras.Model, name: str = "accuracy") -> keras.metrics.Metric:
    """The accuracy metric of :func:`classification_loss`'s labels, named ``name``.

    One score per example predicts class 1 above 0.5 after a sigmoid and above 0
    for a logit.
    """
    if is_one_score(model):
        return keras.metrics.BinaryAccuracy(name=name, threshold=0.5 if outputs_probabilities(model) else 0.0)
    return keras.metrics.SparseCategoricalAccuracy(name=name)


def predicted_classes(outputs: Any, *, probabilities: bool) -> np.ndarray:
    """Predicted class indices of a batch of outputs (NumPy).

    Args:
        outputs: ``(batch, classes)`` scores, or ``(batch, 1)`` scores of class 1.
        probabilities: Whether one-score outputs are probabilities (threshold 0.5)
            rather than logits (threshold 0). Unused for several scores.

    Returns:
        A ``(batch,)`` integer array.
    """
    outputs = np.asarray(outputs)
    if outputs.ndim >= 1 and outputs.shape[-1] == 1:
        return (outputs[..., 0] > (0.5 if probabilities else 0.0)).astype("int64")
    return np.argmax(outputs, axis=-1)


def two_class_logits(logits: Any) -> Any:
    """``(batch, 1)`` logits of class 1 as the ``(batch, 2)`` logits ``[0, z]``; wider logits unchanged.

    ``softmax([0, z])`` is ``[1 - sigmoid(z), sigmoid(z)]``, so a softmax over the
    result (a softened KL divergence, an argmax) reads the binary classifier's
    two class probabilities, where a softmax over the one column is always 1.

    Example:

    >>> [float(v) for v in keras.ops.convert_to_numpy(two_class_logits(np.array([[2.0]])))[0]]
    [0.0, 2.0]
    """
    logits = keras.ops.convert_to_tensor(logits)
    if logits.shape[-1] != 1:
        return logits
    return keras.ops.concatenate([keras.ops.zeros_like(logits), logits], axis=-1)
