"""Scoring models and ``.tflite`` files: top-1 classes, sizes, sparsity."""

import gzip

import numpy as np

__all__ = ["PREDICT_BATCH", "gzip_bytes", "interpreter_top1", "kernel_sparsity", "save_top1"]

PREDICT_BATCH = 256


def save_top1(model, images, path):
    """Saves the Keras model's top-1 class per image (int32 ``.npy``); returns ``path``."""
    logits = model.predict(images, batch_size=PREDICT_BATCH, verbose=0)
    np.save(path, np.argmax(logits, axis=-1).astype(np.int32))
    return path


def kernel_sparsity(model):
    """The share of zeros among the model's weights of rank 2 or more (kernels)."""
    zeros = total = 0
    for weight in model.weights:
        if len(weight.shape) >= 2:
            values = weight.numpy()
            zeros += int(np.count_nonzero(values == 0))
            total += values.size
    return zeros / total if total else 0.0


def gzip_bytes(data):
    """Size of ``data`` under gzip level 9 and mtime 0, as ``tflite_export.file_sizes`` measures."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def interpreter_top1(flatbuffer, images, batch=PREDICT_BATCH):
    """The ``.tflite`` flatbuffer's top-1 class per image, run in the LiteRT interpreter.

    Args:
        flatbuffer: The model's bytes.
        images: Float inputs; quantized to the input tensor's type when it is an integer.
        batch: Images per interpreter call.

    Returns:
        The classes, one per image.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    predictions = []
    current = None
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        if len(chunk) != current:
            interpreter.resize_tensor_input(input_detail["index"], list(chunk.shape))
            interpreter.allocate_tensors()
            current = len(chunk)
        interpreter.set_tensor(input_detail["index"], _quantize(chunk, input_detail))
        interpreter.invoke()
        predictions.append(np.argmax(interpreter.get_tensor(output_detail["index"]), axis=-1))
    return np.concatenate(predictions)


def _quantize(values, detail):
    if np.issubdtype(detail["dtype"], np.floating):
        return values.astype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(detail["dtype"])
