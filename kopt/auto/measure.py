"""What the search measures on a candidate: accuracy, sparsity and int8 file size.

Accuracies are in percent, so that a budget such as ``max_accuracy_drop=0.5``
reads in points. The size of a candidate is that of its full-integer (int8)
TFLite file after gzip -9, the figure a download or a flash image pays.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
>>> [name for name, _, size in prunable_layers(model)], layer_sparsities(model)
(['d'], {'d': 0.0})
"""

import os
import tempfile

import keras
import numpy as np

from kopt.models import outputs_probabilities
from kopt.models import predicted_classes
from kopt.pruning import prunable
from kopt.quantization import calibrate
from kopt.quantization import quantize_model
from tflite_export.layers import leaf_layers
from tflite_export.recurrent import looped_layers

__all__ = [
    "INT8_CALIBRATIONS", "accuracy", "calibrated_int8_model", "int8_calibration", "int8_point", "layer_sparsities",
    "prunable_layers",
]  # fmt: skip

INT8_CALIBRATIONS = ("kopt", "converter")


def prunable_layers(model: keras.Model) -> list:
    """``[(name, layer, weight count)]`` of every prunable leaf layer, in model order."""
    found = []
    for layer in leaf_layers(model):
        if layer.built and layer.weights and prunable.is_prunable(layer):
            size = sum(int(np.prod(weight.shape)) for weight in prunable.get_prunable_weights(layer))
            found.append((layer.name, layer, size))
    return found


def layer_sparsities(model: keras.Model) -> dict:
    """``{layer name: fraction of exact zeros}`` in each prunable layer's prunable weights."""
    result = {}
    for name, layer, size in prunable_layers(model):
        zeros = sum(
            int(np.sum(keras.ops.convert_to_numpy(weight.value) == 0))
            for weight in prunable.get_prunable_weights(layer)
        )
        result[name] = zeros / size
    return result


def accuracy(model: keras.Model, images, labels, *, batch_size: int = 512) -> float:
    """Top-1 accuracy of a classifier on arrays, in percent (a one-score model's by its threshold)."""
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    return _percent_right(outputs, labels, model)


def int8_calibration(model: keras.Model, requested: str | None = None) -> str:
    """Who calibrates the int8 files of a search: ``"kopt"`` or ``"converter"``.

    ``"converter"`` hands the float model and typical inputs to the TFLite
    converter's calibrator. ``"kopt"`` makes the model quantization-aware and
    calibrates its ranges without training (what
    :func:`kopt.quantization.quantize_calibrated` does), so the parts TFLite has
    no int8 kernel for stay float. ``None`` chooses ``"kopt"`` for a model with a
    recurrent layer that converts to a loop, which the converter's calibrator
    cannot run (it would be unrolled: a file with one copy of the step per time
    step, whose loop is forced to int8), and ``"converter"`` otherwise.

    Raises:
        ValueError: For any other ``requested``, naming it.

    Example:

    >>> rows = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(2)])
    >>> int8_calibration(rows), int8_calibration(rows, "converter")
    ('kopt', 'converter')
    """
    if requested is None:
        return "kopt" if looped_layers(model) else "converter"
    if requested not in INT8_CALIBRATIONS:
        raise ValueError(
            f"int8_calibration must be one of {INT8_CALIBRATIONS} or None. Received: int8_calibration={requested!r}"
        )
    return requested


def calibrated_int8_model(model: keras.Model, calibration) -> keras.Model:
    """``model`` made quantization-aware, its ranges calibrated on ``calibration`` (kopt's PTQ, no training)."""
    images = np.asarray(calibration)
    return calibrate(quantize_model(model), images, max_examples=len(images))


def int8_point(
    model: keras.Model, calibration, images, labels, *, path: str | None = None, calibrated_by: str = "converter"
) -> dict:
    """Converts ``model`` to a full-integer TFLite file and scores it.

    Args:
        model: A plain (stripped) Keras classifier.
        calibration: Representative images for the int8 ranges (NumPy array).
        images: Images to score the file on.
        labels: Their labels.
        path: Where to keep the file; ``None`` uses a temporary file.
        calibrated_by: ``"converter"`` or ``"kopt"`` (see :func:`int8_calibration`).

    Returns:
        ``{"accuracy", "bytes", "gzip_bytes"}`` (accuracy of the file, percent).
    """
    import tflite_export

    calibrated_by = int8_calibration(model, calibrated_by)
    with tempfile.TemporaryDirectory(prefix="kopt-auto-") as workdir:
        target = path or os.path.join(workdir, "candidate.tflite")
        if calibrated_by == "kopt":
            # The ranges are the model's own: the converter must not calibrate its float parts.
            tflite_export.convert(calibrated_int8_model(model, calibration), target, mode="int8")
        else:
            tflite_export.convert(model, target, mode="int8", representative_dataset=np.asarray(calibration))
        outputs = tflite_export.predict(target, images)
        sizes = tflite_export.file_sizes(target)
    return {
        "accuracy": _percent_right(outputs, labels, model),
        "bytes": int(sizes["bytes"]),
        "gzip_bytes": int(sizes["gzip_bytes"]),
    }


def _percent_right(outputs, labels, model):
    predicted = predicted_classes(outputs, probabilities=outputs_probabilities(model))
    return float(np.mean(predicted == np.asarray(labels).reshape(predicted.shape)) * 100)
