"""Measurements of one model for the report: accuracy in Keras and TFLite, size, sparsity."""

import os

import keras
import numpy as np
from absl import logging

import tflite_export
from kopt.pruning.report import empty_channels
from kopt.pruning.report import kernel_sparsity
from kopt.quantization import QuantizeLayer
from kopt.quantization import packed_size


def deployed_params(model):
    """Parameters of the model that export keeps: wrapped layers' own, no bookkeeping.

    ``model.count_params()`` of a sparsity-preserving QAT model counts each kernel
    twice (its 0/1 mask is a weight too), plus quantization ranges; none of them
    reach the exported file, so they are left out. A BatchNormalization folded by
    QAT counts as the bias it became.

    Example:

    >>> import keras
    >>> from kopt.quantization import quantize_model, schemes
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> qat = quantize_model(model, scheme=schemes.Default8BitPrunePreserveQuantizeScheme())
    >>> qat.count_params() > deployed_params(qat) == model.count_params() == 10
    True
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += deployed_params(layer)
            continue
        while isinstance(getattr(layer, "layer", None), keras.layers.Layer):
            layer = layer.layer  # kopt's pruning, clustering and QAT wrappers
        if isinstance(layer, QuantizeLayer):
            continue  # the input's quantization range
        total += sum(int(np.prod(weight.shape)) for weight in layer.weights)
    return total


def measure(
    model,
    test,
    tflite_path,
    *,
    mode="float32",
    representative_dataset=None,
    inference_input_type="float32",
    inference_output_type="float32",
    sparse_weights=False,
):
    """Exports ``model`` to ``tflite_path`` and measures it for the report.

    The conversion arguments are those of ``tflite_export.convert``.

    Returns:
        A dict with ``keras_accuracy``, ``tflite_accuracy`` (the file run in the
        LiteRT interpreter on the whole test set), ``tflite_agreement`` (top-1
        agreement of file and Keras model), ``tflite_bytes``, ``tflite_gzip_bytes``, ``packed_bytes``
        (:func:`kopt.quantization.packed_size`: the weights at their own bit width, 1 or 2 bits for
        binary and ternary ones the file stores as int8),
        ``params`` (:func:`deployed_params`), ``sparsity``, ``empty_channels`` (output channels whose kernel
        weights are all zero), ``tflite_mode`` and ``tflite_path``; with ``sparse_weights``, also
        ``sparse_inference`` (``tflite_export.sparse_inference_check`` of the file).
    """
    logging.info("Exporting %s to %s (mode %s).", model.name, tflite_path, mode)
    tflite_export.convert(
        model,
        tflite_path,
        mode=mode,
        representative_dataset=representative_dataset,
        inference_input_type=inference_input_type,
        inference_output_type=inference_output_type,
        sparse_weights=sparse_weights,
    )
    checked = tflite_export.verify(tflite_path, model, test)
    sizes = tflite_export.file_sizes(tflite_path)
    extra = {"sparse_inference": tflite_export.sparse_inference_check(tflite_path)} if sparse_weights else {}
    return {
        # verify runs the Keras model on the same images; a second pass would repeat it.
        "keras_accuracy": checked["keras_accuracy"],
        "tflite_accuracy": checked["tflite_accuracy"],
        "tflite_agreement": checked["agreement"],
        "tflite_bytes": sizes["bytes"],
        "tflite_gzip_bytes": sizes["gzip_bytes"],
        "packed_bytes": packed_size(model)["packed_bytes"],
        "params": deployed_params(model),
        "sparsity": kernel_sparsity(model),
        # Whole filters that pruning emptied: free structured pruning.
        "empty_channels": empty_channels(model)["empty"],
        "tflite_mode": mode,
        "tflite_io_types": [inference_input_type, inference_output_type],
        "tflite_path": os.path.abspath(tflite_path),
        **extra,
    }
