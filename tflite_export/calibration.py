"""Representative data for the integer modes: one example at a time, in each input's dtype."""

import keras
import numpy as np
import tensorflow as tf

__all__ = ["calibration_generator", "is_representative"]

REPRESENTATIVE_EXAMPLES = 256


def is_representative(source):
    if isinstance(source, (np.ndarray, tf.data.Dataset)):
        return True
    values = list(source.values()) if isinstance(source, dict) else source
    return isinstance(source, (dict, list, tuple)) and bool(values) and all(isinstance(v, np.ndarray) for v in values)


def calibration_generator(representative_dataset, model):
    """Yields single examples in the dtypes of the model's inputs, by name when there are several."""
    inputs = list(getattr(model, "inputs", None) or [])
    names = [tensor.name for tensor in inputs]
    dtypes = [np.dtype(keras.backend.standardize_dtype(tensor.dtype)) for tensor in inputs] or [np.dtype(np.float32)]

    def examples():
        yielded = 0
        for batch in _iterate_batches(representative_dataset, len(names) > 1):
            if isinstance(batch, dict):
                batch = [np.asarray(batch[name]) for name in names]
            for index in range(len(batch[0])):
                example = [array[index][np.newaxis].astype(dtype) for array, dtype in zip(batch, dtypes)]
                # The converter matches several inputs by their signature names.
                yield dict(zip(names, example)) if len(example) > 1 else example
                yielded += 1
                if yielded >= REPRESENTATIVE_EXAMPLES:
                    return

    return examples


def _iterate_batches(source, several_inputs):
    """``source``'s input batches, each a list of arrays (one per model input) or a dict."""
    if isinstance(source, np.ndarray):
        yield [source]
        return
    if isinstance(source, dict):
        yield {name: np.asarray(value) for name, value in source.items()}
        return
    if isinstance(source, (list, tuple)):
        yield [np.asarray(value) for value in source]
        return
    for element in source:
        if isinstance(element, (tuple, list)) and (not several_inputs or len(element) == 2):
            element = element[0]  # (inputs, labels)
        if isinstance(element, dict):
            yield {name: np.asarray(value) for name, value in element.items()}
        elif isinstance(element, (tuple, list)):
            yield [np.asarray(value) for value in element]
        else:
            yield [np.asarray(element)]
