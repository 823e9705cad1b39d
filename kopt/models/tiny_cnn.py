"""A tiny convolutional classifier: the default student for distillation."""

from collections.abc import Sequence

import keras

from kopt.models.arguments import check_classifier_arguments


def tiny_cnn(input_shape: Sequence[int], num_classes: int, *, name: str = "tiny_cnn") -> keras.Model:
    """A CNN with about a fiftieth of ``small_cnn``'s parameters on 28x28 images.

    Two 3x3 convolutions (4 and 8 filters, ReLU), each followed by 2x2 max pooling
    where the image is still at least 4 pixels wide, then a dense layer of
    ``num_classes`` logits. It is too small to reach ``small_cnn``'s accuracy by
    itself, which makes it the student that distillation from ``small_cnn`` is for.
    The output is logits (no softmax).

    Args:
        input_shape: ``(height, width, channels)`` of one image.
        num_classes: Number of classes, at least 2.
        name: The model's name.

    Returns:
        An uncompiled functional ``keras.Model``.

    Raises:
        ValueError: If ``input_shape`` or ``num_classes`` is not usable.

    Example:

    >>> tiny_cnn((28, 28, 1), 10).count_params()
    4266
    """
    input_shape = check_classifier_arguments(input_shape, num_classes)
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    if min(input_shape[:2]) >= 4:
        x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    if min(input_shape[:2]) >= 8:
        x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
