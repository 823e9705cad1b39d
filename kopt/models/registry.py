"""Turns a model setting (a built-in name or a ``.keras`` path) into a checked classifier."""

import json
import os
import zipfile
from collections.abc import Sequence
from typing import Any

import keras

from kopt.errors import ConfigError
from kopt.errors import first_line
from kopt.models.small_cnn import small_cnn
from kopt.models.tiny_cnn import tiny_cnn
from kopt.models.tiny_mlp import tiny_mlp
from tflite_export.plugins import unknown_class_hint

BUILTIN_MODELS = {"small_cnn": small_cnn, "tiny_cnn": tiny_cnn, "tiny_mlp": tiny_mlp}
_MODEL_SUFFIXES = (".keras", ".h5")


def get_model(model: str, input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """Builds a built-in model or loads a saved one, and checks it fits the data.

    Args:
        model: A name from ``BUILTIN_MODELS`` or a path to a ``.keras`` (or legacy
            ``.h5``) file. Loaded files keep their trained weights.
        input_shape: The dataset's image shape, ``(height, width, channels)``.
        num_classes: The dataset's number of classes.

    Returns:
        A ``keras.Model`` with one image input and one ``(batch, num_classes)`` output,
        or, for two classes, one ``(batch, 1)`` output (the score of class 1).

    Raises:
        ConfigError: Naming ``model`` and its value, if the name is unknown, the file
            is missing or not a Keras model, or the model does not classify this
            dataset's images into ``num_classes`` classes.

    Example:

    >>> get_model("small_cnn", (8, 8, 1), 10).output_shape
    (None, 10)
    """
    if not isinstance(model, str) or not model:
        raise ConfigError("model", model, "must be a built-in model name or a .keras file path")
    if model in BUILTIN_MODELS:
        if len(input_shape) != 3:
            raise ConfigError(
                "model",
                model,
                f"the built-in models take images, and this dataset's examples are {tuple(input_shape)} "
                "(token ids, features or sequences); pass a .keras file of a model that reads them",
            )
        return BUILTIN_MODELS[model](tuple(input_shape), int(num_classes))
    if not model.endswith(_MODEL_SUFFIXES):
        raise ConfigError(
            "model", model, f"not a built-in model ({', '.join(sorted(BUILTIN_MODELS))}) nor a path ending in .keras"
        )
    if not os.path.isfile(model):
        raise ConfigError("model", model, f"file not found: {os.path.abspath(model)}")
    loaded = load_saved_model(model)
    check_classifier(loaded, input_shape, num_classes, key="model", value=model)
    return loaded


def load_saved_model(path: str, *, key: str = "model") -> keras.Model:
    """``keras.models.load_model(path, compile=False)``, or a ``ConfigError`` keyed ``key`` saying why not.

    A model holding a layer class that is not registered in this process is refused
    with the class, the module it was saved from and ``--custom_layers``.
    """
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as err:  # The loader raises many types for a foreign file.
        reason = _keras2_file(path) or unknown_class_hint(err) or first_line(err)
        raise ConfigError(key, path, f"not a loadable Keras model file ({reason})") from err


def _keras2_file(path):
    """Why a ``.keras`` file tf_keras (Keras 2) wrote does not load, or ``None``: Keras 3 reads its ``.h5`` instead."""
    try:
        with zipfile.ZipFile(path) as archive:
            version = str(json.loads(archive.read("metadata.json")).get("keras_version", ""))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    if not version.startswith("2."):
        return None
    return (
        f"it was saved by Keras {version} (tf_keras), whose .keras files Keras 3 cannot read; save it from tf_keras "
        "as .h5 (model.save('model.h5')), which Keras 3 loads, and pass that"
    )


def check_classifier(
    model: keras.Model, input_shape: Sequence[int], num_classes: int, *, key: str = "model", value: Any = None
) -> None:
    """Raises ``ConfigError`` unless ``model`` maps the images to class scores.

    Two classes may also be scored by one output, class 1's logit or sigmoid
    probability (see :mod:`kopt.models.scores`).

    Args:
        model: A ``keras.Model``.
        input_shape: Expected image shape; ``None`` dims in the model match any size.
        num_classes: Expected number of classes.
        key: The setting name used in the error.
        value: The setting value used in the error; defaults to the model's name.
    """
    value = model.name if value is None else value
    if not isinstance(model, keras.Model):
        raise ConfigError(key, value, f"expected a keras.Model, got {type(model).__name__}")
    if len(model.inputs or []) != 1 or len(model.outputs or []) != 1:
        raise ConfigError(
            key,
            value,
            f"needs exactly one input and one output; it has {len(model.inputs or [])} "
            f"inputs and {len(model.outputs or [])} outputs",
        )
    model_input = tuple(model.inputs[0].shape[1:])
    if drops_channel_axis(model, input_shape):
        input_shape = tuple(input_shape)[:-1]
    if len(model_input) != len(input_shape) or any(
        dim is not None and dim != want for dim, want in zip(model_input, input_shape)
    ):
        hint = ""
        if len(model_input) == len(input_shape) == 3 and model_input[2] == input_shape[2] and None not in model_input:
            hint = f"; --image_size={model_input[0]},{model_input[1]} resizes the images to it"
        raise ConfigError(
            key, value, f"takes inputs of shape {model_input} but the dataset's images are {tuple(input_shape)}{hint}"
        )
    output_shape = tuple(model.outputs[0].shape[1:])
    if output_shape == (1,) and num_classes == 2:
        return  # one score, of class 1: a logit, or a probability after a sigmoid
    if output_shape != (num_classes,):
        hint = ""
        if output_shape == () and num_classes == 2:
            hint = "; a binary classifier ends in Dense(1) (a logit, or sigmoid) or Dense(2)"
        raise ConfigError(
            key,
            value,
            f"is not a classifier for this dataset: output shape {output_shape}, "
            f"expected ({num_classes},) class scores{hint}",
        )


def drops_channel_axis(model: keras.Model, input_shape: Sequence[int]) -> bool:
    """Whether ``model`` reads single-channel examples without their channel axis.

    The data loader gives ``(N, H, W)`` arrays a channel axis, as images need; an
    LSTM or a 1-D convolution over the rows of MNIST (or over any ``(N, T, F)``
    sequences) takes ``(H, W)``, so it is fed ``(H, W, 1)`` examples with the last
    axis dropped. Anything else (several channels, another rank) is not adapted.

    Args:
        model: A ``keras.Model`` with one input.
        input_shape: The dataset's example shape, e.g. ``(28, 28, 1)``.

    Example:

    >>> rows = keras.Sequential([keras.Input((28, 28)), keras.layers.LSTM(4), keras.layers.Dense(10)])
    >>> drops_channel_axis(rows, (28, 28, 1)), drops_channel_axis(rows, (28, 28, 3))
    (True, False)
    """
    input_shape = tuple(input_shape)
    if len(model.inputs or []) != 1 or len(input_shape) < 2 or input_shape[-1] != 1:
        return False
    model_input = tuple(model.inputs[0].shape[1:])
    return len(model_input) == len(input_shape) - 1 and all(
        dim is None or dim == want for dim, want in zip(model_input, input_shape[:-1])
    )
