"""Run a ``.tflite`` file in the LiteRT interpreter and compare it with its Keras model.

The interpreter is ``ai_edge_litert`` (LiteRT); ``tf.lite.Interpreter`` is deprecated.
Quantized inputs and outputs are handled with the scale and zero point stored in the
file, so callers always pass and receive float values.
"""

import os

import numpy as np

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


def predict(tflite_path_or_bytes, images, *, batch_size=_DEFAULT_BATCH, num_threads=None):
    """Runs the model on ``images`` and returns float outputs.

    Args:
        tflite_path_or_bytes: The ``.tflite`` file or its bytes; one input, one output.
        images: A float array ``(N, ...)`` of model inputs.
        batch_size: Examples per interpreter call; the input is resized to it.
            Ignored for a file whose batch dimension is fixed (``convert(...,
            batch_size=N)``): that one runs N at a time.
        num_threads: Interpreter threads; ``None`` lets LiteRT choose.

    Returns:
        A float32 array ``(N, ...)`` of outputs, dequantized if the file's output is
        integer.
    """
    interpreter = load_interpreter(tflite_path_or_bytes, num_threads=num_threads)
    input_detail = interpreter.get_input_details()
    output_detail = interpreter.get_output_details()
    if len(input_detail) != 1 or len(output_detail) != 1:
        raise ValueError(
            f"predict supports models with one input and one output; this one has "
            f"{len(input_detail)} inputs and {len(output_detail)} outputs"
        )
    input_detail, output_detail = input_detail[0], output_detail[0]
    images = np.asarray(images, dtype=np.float32)
    fixed_batch = _fixed_batch(input_detail)
    if fixed_batch is not None:
        # A file converted with a static batch runs in steps of exactly that
        # batch; the last step is padded and its padding dropped.
        batch_size = fixed_batch
        interpreter.allocate_tensors()
    outputs = []
    current_batch = fixed_batch
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        used = len(chunk)
        if fixed_batch is not None and used < fixed_batch:
            chunk = np.concatenate([chunk, np.zeros((fixed_batch - used,) + chunk.shape[1:], chunk.dtype)])
        if len(chunk) != current_batch:
            interpreter.resize_tensor_input(input_detail["index"], list(chunk.shape))
            interpreter.allocate_tensors()
            current_batch = len(chunk)
        interpreter.set_tensor(input_detail["index"], _quantize(chunk, input_detail))
        interpreter.invoke()
        outputs.append(_dequantize(interpreter.get_tensor(output_detail["index"]), output_detail)[:used])
    return np.concatenate(outputs, axis=0) if outputs else np.zeros((0,), np.float32)


def verify(tflite_path, keras_model, dataset, *, batch_size=_DEFAULT_BATCH):
    """Scores a ``.tflite`` file against labels and against its Keras model.

    Args:
        tflite_path: The converted file (or its bytes).
        keras_model: The Keras model it was converted from.
        dataset: An iterable of ``(images, labels)`` batches, e.g. a ``tf.data.Dataset``,
            or one ``(images, labels)`` pair of NumPy arrays.
        batch_size: Examples per interpreter call.

    Returns:
        A dict with ``examples``, ``tflite_accuracy``, ``keras_accuracy``,
        ``agreement`` (fraction of examples whose top-1 class is the same in both)
        and ``max_abs_diff`` (largest absolute difference of any output value).
    """
    images, labels = collect(dataset)
    tflite_out = predict(tflite_path, images, batch_size=batch_size)
    keras_out = np.asarray(keras_model.predict(images, batch_size=batch_size, verbose=0), np.float32)
    tflite_top1 = np.argmax(tflite_out, axis=-1)
    keras_top1 = np.argmax(keras_out, axis=-1)
    return {
        "examples": int(len(labels)),
        "tflite_accuracy": float(np.mean(tflite_top1 == labels)),
        "keras_accuracy": float(np.mean(keras_top1 == labels)),
        "agreement": float(np.mean(tflite_top1 == keras_top1)),
        "max_abs_diff": float(np.max(np.abs(tflite_out - keras_out))) if len(labels) else 0.0,
    }


def accuracy(tflite_path, dataset, *, batch_size=_DEFAULT_BATCH):
    """Top-1 accuracy of a ``.tflite`` classifier on ``(images, labels)`` batches."""
    images, labels = collect(dataset)
    predictions = np.argmax(predict(tflite_path, images, batch_size=batch_size), axis=-1)
    return float(np.mean(predictions == labels))


def collect(dataset):
    """Concatenates ``(images, labels)`` batches into two NumPy arrays.

    ``dataset`` may also be one ``(images, labels)`` pair of arrays.
    """
    if isinstance(dataset, tuple) and len(dataset) == 2 and all(isinstance(a, np.ndarray) for a in dataset):
        images, labels = dataset
        if len(images) != len(labels):
            raise ValueError(
                f"images and labels differ in length. Received: {len(images)} images, {len(labels)} labels"
            )
        if not len(images):
            raise ValueError("dataset yielded no batches; cannot verify on an empty dataset")
        return images, labels.reshape(-1)
    images, labels = [], []
    for batch_images, batch_labels in dataset:
        images.append(np.asarray(batch_images))
        labels.append(np.asarray(batch_labels))
    if not images:
        raise ValueError("dataset yielded no batches; cannot verify on an empty dataset")
    return np.concatenate(images), np.concatenate(labels).reshape(-1)


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
    if scale == 0:
        raise ValueError(f"input tensor {detail['name']!r} is {np.dtype(dtype).name} without quantization parameters")
    info = np.iinfo(dtype)
    # Round, then shift: LiteRT's QUANTIZE rounds x / scale half to even before adding
    # the zero point, and with an odd zero point the other order differs at ties.
    return np.clip(np.round(values / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(values, detail):
    if np.issubdtype(values.dtype, np.floating):
        return values.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)
