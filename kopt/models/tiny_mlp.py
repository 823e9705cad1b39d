"""A tiny multilayer perceptron: a student that can overfit a small training set."""

from collections.abc import Sequence

import keras

from kopt.models.arguments import check_classifier_arguments


def tiny_mlp(input_shape: Sequence[int], num_classes: int, *, units: int = 28, name: str = "tiny_mlp") -> keras.Model:
    """One hidden ReLU layer of ``units`` on the flattened image, then ``num_classes`` logits.

    On 28x28 MNIST images it has 22,270 parameters, under a tenth of
    ``small_cnn``'s 224,714. Unlike ``tiny_cnn`` it fits its training set almost
    perfectly when trained long enough and then generalizes worse: the kind of
    student that a teacher's soft targets help most. The output is logits (no
    softmax).

    Args:
        input_shape: ``(height, width, channels)`` of one image.
        num_classes: Number of classes, at least 2.
        units: Width of the hidden layer, at least 1.
        name: The model's name.

    Returns:
        An uncompiled functional ``keras.Model``.

    Raises:
        ValueError: If ``input_shape``, ``num_classes`` or ``units`` is not usable.

    Example:

    >>> tiny_mlp((28, 28, 1), 10).count_params()
    22270
    """
    input_shape = check_classifier_arguments(input_shape, num_classes)
    if not isinstance(units, int) or isinstance(units, bool) or units < 1:
        raise ValueError(f"units must be a positive int. Received: units={units}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(units, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
