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

from kopt.pruning import prunable
from tflite_export.layers import leaf_layers

__all__ = ["accuracy", "int8_point", "layer_sparsities", "prunable_layers"]


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
    """Top-1 accuracy of a classifier on arrays, in percent."""
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(outputs, axis=-1) == np.asarray(labels)) * 100)


def int8_point(model: keras.Model, calibration, images, labels, *, path: str | None = None) -> dict:
    """Converts ``model`` to a full-integer TFLite file and scores it.

    Args:
        model: A plain (stripped) Keras classifier.
        calibration: Representative images for the int8 ranges (NumPy array).
        images: Images to score the file on.
        labels: Their labels.
        path: Where to keep the file; ``None`` uses a temporary file.

    Returns:
        ``{"accuracy", "bytes", "gzip_bytes"}`` (accuracy of the file, percent).
    """
    import tflite_export

    with tempfile.TemporaryDirectory(prefix="kopt-auto-") as workdir:
        target = path or os.path.join(workdir, "candidate.tflite")
        tflite_export.convert(model, target, mode="int8", representative_dataset=np.asarray(calibration))
        outputs = tflite_export.predict(target, images)
        sizes = tflite_export.file_sizes(target)
    return {
        "accuracy": float(np.mean(np.argmax(outputs, axis=-1) == np.asarray(labels)) * 100),
        "bytes": int(sizes["bytes"]),
        "gzip_bytes": int(sizes["gzip_bytes"]),
    }
