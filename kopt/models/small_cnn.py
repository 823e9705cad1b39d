"""The built-in small convolutional classifier that kopt-optimize trains by default."""

from collections.abc import Sequence

import keras

from kopt.models.arguments import check_classifier_arguments


def small_cnn(input_shape: Sequence[int], num_classes: int, *, name: str = "small_cnn") -> keras.Model:
    """A small CNN for image classification that suits every kopt technique.

    Three 3x3 convolutions (16, 32, 64 filters, ReLU) with 2x2 max pooling, then a
    64-unit dense layer and a dense layer of ``num_classes`` logits. It has both
    convolutions and dense layers, so pruning, clustering and quantization all have
    something to act on, and is small enough to train on 2 CPU cores in seconds.
    The output is logits (no softmax), which distillation needs; train it with
    ``from_logits=True``.

    Args:
        input_shape: ``(height, width, channels)`` of one image; height and width at
            least 2.
        num_classes: Number of classes, at least 2.
        name: The model's name.

    Returns:
        An uncompiled functional ``keras.Model``.

    Raises:
        ValueError: If ``input_shape`` or ``num_classes`` is not usable.

    Example:

    >>> model = small_cnn((8, 8, 1), 10)
    >>> model.output_shape
    (None, 10)
    """
    input_shape = check_classifier_arguments(input_shape, num_classes)
    if min(input_shape[:2]) < 2:
        raise ValueError(f"small_cnn needs images of at least 2x2. Received: input_shape={input_shape}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    if min(input_shape[:2]) >= 4:
        x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(64, activation="relu", name="dense1")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
