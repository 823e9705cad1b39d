"""Run a ``.tflite`` file in the LiteRT interpreter and compare it with its Keras model.

The interpreter is ``ai_edge_litert`` (LiteRT); ``tf.lite.Interpreter`` is deprecated.
Quantized inputs and outputs are handled with the scale and zero point stored in the
file, so callers always pass and receive float values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

if TYPE_CHECKING:
    import keras

_DEFAULT_BATCH = 256


def load_interpreter(tflite_path_or_bytes, *, num_threads=None):
    """Returns an ``ai_edge_litert`` interpreter for a file path or flatbuffer bytes."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(tflite_path_or_bytes, (bytes, bytearray)):
        return Interpreter(model_content=bytes(tflite_path_or_bytes), num_threads=num_threads)
    path = os.fspath(tflite_path_or_bytes)
    if not os.path.isfile(path):
        raise ValueError(f"tflite_path does not exist. Received: tflite_path={path!r}")
    try:
        return Interpreter(model_path=path, num_threads=num_threads)
    except Exception as err:
        raise ValueError(f"tflite_path is not a valid TFLite flatbuffer: {path!r} ({err})") from err


def predict(
    tflite_path_or_bytes: str | os.PathLike | bytes,
    inputs: np.ndarray | list[np.ndarray] | dict[str, np.ndarray],
    *,
    batch_size: int = _DEFAULT_BATCH,
    num_threads: int | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Runs the model on ``inputs`` and returns float outputs.

    Args:
        tflite_path_or_bytes: The ``.tflite`` file or its bytes.
        inputs: The model inputs, first axis the examples: one array for a file
            with one input; for several, a dict ``{input name: array}`` (the
            Keras input names, which the file keeps unless converted with
            ``strip_strings``) or a list in the file's input order (the converter
            sorts inputs by name; ``inspect(path)["inputs"]`` lists them). Float
            data is quantized where the file's input is; integer inputs (token
            ids) must hold integers and are passed as they are.
        batch_size: Examples per interpreter call; the inputs are resized to it.
            Ignored for a file whose batch dimension is fixed (``convert(...,
            batch_size=N)``): that one runs N at a time.
        num_threads: Interpreter threads; ``None`` lets LiteRT choose.

    Returns:
        A float32 array ``(N, ...)`` for a file with one output, dequantized if it
        is integer; a list of such arrays, in the Keras model's output order, for
        several.

    Raises:
        ValueError: For inputs that do not match the file's (count, names,
            lengths, non-integer values for an integer input).

    Example:

    >>> import keras, numpy as np, os, tempfile
    >>> tokens = keras.Input((5,), dtype="int32", name="tokens")
    >>> x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(20, 4)(tokens))
    >>> model = keras.Model(tokens, keras.layers.Dense(2)(x))
    >>> from tflite_export.converter import convert
    >>> path = convert(model, os.path.join(tempfile.mkdtemp(), "text.tflite"))
    >>> predict(path, np.arange(10, dtype="int32").reshape(2, 5)).shape
    (2, 2)
    """
    interpreter = load_interpreter(tflite_path_or_bytes, num_threads=num_threads)
    input_details, output_details = _ordered_details(interpreter)
    arrays = _input_arrays(inputs, input_details)
    count = len(arrays[0])
    fixed_batch = _fixed_batch(input_details[0])
    if fixed_batch is not None:
        # A file converted with a static batch runs in steps of exactly that
        # batch; the last step is padded and its padding dropped.
        batch_size = fixed_batch
        interpreter.allocate_tensors()
    outputs = [[] for _ in output_details]
    current_batch = fixed_batch
    for start in range(0, count, batch_size):
        chunks = [array[start : start + batch_size] for array in arrays]
        used = len(chunks[0])
        if fixed_batch is not None and used < fixed_batch:
            chunks = [
                np.concatenate([chunk, np.zeros((fixed_batch - used,) + chunk.shape[1:], chunk.dtype)])
                for chunk in chunks
            ]
        if len(chunks[0]) != current_batch:
            for chunk, detail in zip(chunks, input_details):
                interpreter.resize_tensor_input(detail["index"], list(chunk.shape))
            interpreter.allocate_tensors()
            current_batch = len(chunks[0])
        for chunk, detail in zip(chunks, input_details):
            interpreter.set_tensor(detail["index"], _quantize(chunk, detail))
        # A fused LSTM keeps its state between calls; each batch starts from zeros, as in Keras.
        interpreter.reset_all_variables()
        interpreter.invoke()
        for collected, detail in zip(outputs, output_details):
            collected.append(_dequantize(interpreter.get_tensor(detail["index"]), detail)[:used])
    results = [np.concatenate(parts, axis=0) if parts else np.zeros((0,), np.float32) for parts in outputs]
    return results[0] if len(results) == 1 else results


def verify(
    tflite_path: str | os.PathLike | bytes,
    keras_model: keras.Model,
    dataset: Iterable[tuple[Any, Any]] | tuple[Any, Any],
    *,
    batch_size: int = _DEFAULT_BATCH,
    binary_threshold: float | None = None,
) -> dict[str, float]:
    """Scores a ``.tflite`` file against labels and against its Keras model.

    The first output is the prediction: its last axis holds the class scores, so
    a sequence output ``(N, T, classes)`` with labels ``(N, T)`` is scored per
    position. An output of one score per example (a binary classifier, ``(N, 1)``
    or ``(N,)``) predicts class 1 above ``binary_threshold``: by default 0.5 when
    the model ends in a sigmoid, else 0.0 (a logit). ``max_abs_diff`` covers every
    output.

    Args:
        tflite_path: The converted file (or its bytes).
        keras_model: The Keras model it was converted from.
        dataset: An iterable of ``(inputs, labels)`` batches, e.g. a
            ``tf.data.Dataset``, or one ``(inputs, labels)`` pair; ``inputs`` as
            the Keras model takes them (an array, a list in the model's input
            order, or a dict by input name).
        batch_size: Examples per interpreter call.
        binary_threshold: The score above which a one-score output predicts
            class 1; ``None`` reads it from the Keras model's last activation.

    Returns:
        A dict with ``examples``, ``tflite_accuracy``, ``keras_accuracy``,
        ``agreement`` (fraction of predictions whose top-1 class is the same in
        both; per position for sequence outputs) and ``max_abs_diff`` (largest
        absolute difference of any output value).

    Raises:
        ValueError: The labels do not match the predictions' shape, or the
            file's outputs do not match the Keras model's.
    """
    inputs, labels = collect(dataset)
    if isinstance(inputs, (list, tuple)):
        # The Keras order; the file sorts its inputs by name.
        names = [tensor.name for tensor in getattr(keras_model, "inputs", None) or []]
        if len(names) == len(inputs):
            inputs = dict(zip(names, inputs))
    tflite_out = _as_list(predict(tflite_path, inputs, batch_size=batch_size))
    keras_out = [
        np.asarray(o, np.float32) for o in _as_list(keras_model.predict(inputs, batch_size=batch_size, verbose=0))
    ]
    if [o.shape for o in tflite_out] != [o.shape for o in keras_out]:
        raise ValueError(
            f"The file's outputs {[o.shape for o in tflite_out]} do not match the Keras model's "
            f"{[o.shape for o in keras_out]}; is {keras_model.name!r} the model the file was converted from?"
        )
    if binary_threshold is None and _is_one_score(tflite_out[0]):
        binary_threshold = 0.5 if _ends_in_sigmoid(keras_model) else 0.0
    tflite_top1 = _predicted_classes(tflite_out[0], binary_threshold)
    keras_top1 = _predicted_classes(keras_out[0], binary_threshold)
    labels = _labels_like(labels, tflite_top1)
    return {
        "examples": int(len(labels)),
        "tflite_accuracy": float(np.mean(tflite_top1 == labels)),
        "keras_accuracy": float(np.mean(keras_top1 == labels)),
        "agreement": float(np.mean(tflite_top1 == keras_top1)),
        "max_abs_diff": max(float(np.max(np.abs(t - k))) if t.size else 0.0 for t, k in zip(tflite_out, keras_out)),
    }


def accuracy(
    tflite_path: str | os.PathLike | bytes,
    dataset: Iterable[tuple[Any, Any]] | tuple[Any, Any],
    *,
    batch_size: int = _DEFAULT_BATCH,
    binary_threshold: float | None = None,
) -> float:
    """Top-1 accuracy of a ``.tflite`` classifier on ``(inputs, labels)`` batches.

    A file with one score per example (a binary classifier) needs
    ``binary_threshold``, the score above which it predicts class 1: 0.5 for a
    sigmoid's probability, 0.0 for a logit. The file alone does not say which.

    Raises:
        ValueError: One score per example and no ``binary_threshold``, or labels
            that do not match the predictions' shape.
    """
    inputs, labels = collect(dataset)
    scores = _as_list(predict(tflite_path, inputs, batch_size=batch_size))[0]
    if binary_threshold is None and _is_one_score(scores):
        raise ValueError(
            f"The file's first output holds one score per example (shape {scores.shape}), so its class depends "
            "on a threshold: pass binary_threshold=0.5 if it is a sigmoid's probability, 0.0 if it is a logit. "
            "Received: binary_threshold=None"
        )
    predictions = _predicted_classes(scores, binary_threshold)
    return float(np.mean(predictions == _labels_like(labels, predictions)))


def _is_one_score(scores):
    return scores.ndim == 1 or scores.shape[-1] == 1


def _predicted_classes(scores, binary_threshold):
    """The class of each prediction: the top score's index, or 1 above the threshold for one score."""
    if _is_one_score(scores):
        flat = scores.reshape(scores.shape[:-1]) if scores.ndim > 1 else scores
        return (flat > binary_threshold).astype(np.int64)
    return np.argmax(scores, axis=-1)


def _labels_like(labels, predictions):
    """``labels`` in the predictions' shape, or a ValueError naming both shapes."""
    if labels.size == predictions.size:
        return labels.reshape(predictions.shape)
    raise ValueError(
        f"The labels do not match the predictions: labels of shape {labels.shape} for predictions of shape "
        f"{predictions.shape} (the first output's class per example, per position for a sequence). Pass one "
        "class index per prediction; for a model whose first output is not a classifier, verify's accuracy and "
        "agreement do not apply."
    )


def _ends_in_sigmoid(keras_model):
    """Whether the layer computing the model's first output ends in a sigmoid (wrappers looked through)."""
    outputs = getattr(keras_model, "outputs", None) or []
    layers = list(getattr(keras_model, "layers", []))
    last = layers[-1] if layers else None
    if outputs:
        for layer in reversed(layers):
            try:
                produced = layer.output
            except (AttributeError, ValueError):  # a layer called more than once has no single output
                continue
            if any(
                tensor is outputs[0] for tensor in (produced if isinstance(produced, (list, tuple)) else [produced])
            ):
                last = layer
                break
    while last is not None and hasattr(last, "layer") and not hasattr(last, "activation"):
        last = last.layer  # pruning, quantization and clustering wrappers
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "") == "sigmoid"


def collect(dataset):
    """Concatenates ``(inputs, labels)`` batches into NumPy arrays.

    ``dataset`` may also be one ``(inputs, labels)`` pair. ``inputs`` may be an
    array, a list/tuple of arrays or a dict of them (several model inputs);
    labels of shape ``(N, 1)`` become ``(N,)``, other shapes are kept.
    """
    if isinstance(dataset, tuple) and len(dataset) == 2 and isinstance(dataset[1], np.ndarray):
        batches = [dataset]
    else:
        batches = list(dataset)
    if not batches:
        raise ValueError("dataset yielded no batches; cannot verify on an empty dataset")
    inputs = _concatenate([batch[0] for batch in batches])
    labels = np.concatenate([np.asarray(batch[1]) for batch in batches])
    count = len(
        next(iter(inputs.values())) if isinstance(inputs, dict) else inputs[0] if isinstance(inputs, list) else inputs
    )
    if count != len(labels):
        raise ValueError(f"inputs and labels differ in length. Received: {count} images, {len(labels)} labels")
    if not len(labels):
        raise ValueError("dataset yielded no batches; cannot verify on an empty dataset")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.reshape(-1)
    return inputs, labels


def _concatenate(parts):
    first = parts[0]
    if isinstance(first, dict):
        return {name: np.concatenate([np.asarray(part[name]) for part in parts]) for name in first}
    if isinstance(first, (list, tuple)):
        return [np.concatenate([np.asarray(part[i]) for part in parts]) for i in range(len(first))]
    return np.concatenate([np.asarray(part) for part in parts])


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _ordered_details(interpreter):
    """Input and output details: inputs in the file's order, outputs in the Keras order.

    The file's signature names each output ``output_<i>`` after its place in the
    Keras model; a file converted with ``strip_strings`` has no signature and
    keeps the file's order.
    """
    input_details = interpreter.get_input_details()
    output_details = interpreter.get_output_details()
    if interpreter.get_signature_list():
        runner = interpreter.get_signature_runner()
        signature_inputs = runner.get_input_details()
        names = {detail["index"]: name for name, detail in signature_inputs.items()}
        for detail in input_details:
            detail["signature_name"] = names.get(detail["index"])
        by_index = {detail["index"]: detail for detail in output_details}
        signature_outputs = runner.get_output_details()
        ordered = sorted(signature_outputs.items(), key=lambda item: _output_position(item[0]))
        if all(detail["index"] in by_index for _, detail in ordered):
            output_details = [by_index[detail["index"]] for _, detail in ordered]
    return input_details, output_details


def _output_position(name):
    suffix = name.rsplit("_", 1)[-1]
    return (0, int(suffix), name) if suffix.isdigit() else (1, 0, name)


def _input_arrays(inputs, details):
    if isinstance(inputs, dict):
        names = [detail.get("signature_name") for detail in details]
        if None in names:
            raise ValueError(
                "inputs is a dict, but this file has no input names (converted with strip_strings=True); "
                "pass a list in the file's input order"
            )
        missing = sorted(set(names) - set(inputs))
        extra = sorted(set(inputs) - set(names))
        if missing or extra:
            raise ValueError(f"inputs must be keyed by the file's input names {names}. Received keys: {sorted(inputs)}")
        arrays = [inputs[name] for name in names]
    elif isinstance(inputs, (list, tuple)) and len(details) > 1:
        arrays = list(inputs)
    else:
        arrays = [inputs]
    if len(arrays) != len(details):
        raise ValueError(
            f"This file has {len(details)} inputs ({[d.get('signature_name') or d['name'] for d in details]}); "
            f"received {len(arrays)}. Pass a dict by input name or a list in that order."
        )
    arrays = [np.asarray(array) for array in arrays]
    lengths = {len(array) for array in arrays}
    if len(lengths) != 1:
        raise ValueError(f"Every input needs the same number of examples. Received lengths: {[len(a) for a in arrays]}")
    return arrays


def _fixed_batch(detail):
    """The batch a file was converted with, or None where the batch dimension is resizable."""
    signature = detail.get("shape_signature")
    if signature is None or not len(signature) or int(signature[0]) < 1:
        return None
    return int(signature[0])


def _quantize(values, detail):
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return values.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    if scale == 0:
        # An integer input that is not quantized: token ids, indices, lengths.
        if not np.issubdtype(values.dtype, np.integer) and not np.array_equal(values, np.round(values)):
            raise ValueError(
                f"input tensor {detail['name']!r} takes integers ({np.dtype(dtype).name}); received non-integer "
                f"values of dtype {values.dtype}"
            )
        if values.size and (values.min() < info.min or values.max() > info.max):
            raise ValueError(
                f"input tensor {detail['name']!r} takes {np.dtype(dtype).name}; received values from "
                f"{values.min()} to {values.max()}"
            )
        return values.astype(dtype)
    # Round, then shift: LiteRT's QUANTIZE rounds x / scale half to even before adding
    # the zero point, and with an odd zero point the other order differs at ties.
    return np.clip(np.round(values / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(values, detail):
    if np.issubdtype(values.dtype, np.floating):
        return values.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)
