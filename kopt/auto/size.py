"""Predicting the gzipped size of the int8 TFLite file from per-layer sparsities.

Converting a model to TFLite takes seconds, too slow to try inside a search. The
file is mostly its int8 kernels plus a part that pruning does not change (the
flatbuffer structure, biases, quantization parameters). So the model is converted
once, dense, and that fixed part is taken as the file's gzipped size minus the
gzipped size of its kernels quantized the way the converter stores them
(symmetric int8, per output channel for convolutions, per tensor for Dense,
output channels first). A candidate's size is then that fixed part plus the
gzipped size of its own pruned, quantized kernels: a few milliseconds.

Example:

>>> import numpy as np
>>> kernel = np.random.default_rng(0).normal(size=(64, 64))
>>> pruned = np.where(np.abs(kernel) > 1.0, kernel, 0.0)
>>> gzip_size(quantized_kernel_bytes([pruned])) < gzip_size(quantized_kernel_bytes([kernel]))
True
"""

import keras
import numpy as np

from kopt.auto import measure
from kopt.pruning import masks
from kopt.pruning import prunable
from tflite_export.sizes import gzip_size

__all__ = ["SizeModel", "quantized_kernel_bytes"]


def quantized_kernel_bytes(kernels) -> bytes:
    """Kernels as int8, laid out output-channel first as in a TFLite file."""
    parts = []
    for kernel in kernels:
        kernel = np.asarray(kernel, np.float32)
        if kernel.ndim > 2:
            limit = np.abs(kernel.reshape(-1, kernel.shape[-1])).max(axis=0)
        else:
            limit = np.full(kernel.shape[-1:], np.abs(kernel).max())
        scale = np.maximum(limit, 1e-12) / 127.0
        quantized = np.clip(np.round(kernel / scale), -127, 127).astype(np.int8)
        parts.append(np.ascontiguousarray(np.moveaxis(quantized, -1, 0)).tobytes())
    return b"".join(parts)


class SizeModel:
    """Predicts a model's gzipped int8 TFLite size for per-layer sparsities.

    Args:
        model: The trained, plain Keras model the sparsities apply to.
        calibration: Representative images for the one int8 conversion.
        criterion: ``"magnitude"`` (default) or ``"random"``: which weights a
            sparsity removes.

    Attributes:
        measured_gzip_bytes: The dense model's real gzipped int8 file size.
        fixed_bytes: The part of it that pruning does not change.
    """

    def __init__(self, model: keras.Model, calibration: np.ndarray, *, criterion: str = "magnitude"):
        if criterion not in masks.CRITERIA:
            raise ValueError(f"criterion must be one of {masks.CRITERIA}. Received: criterion={criterion!r}")
        self.criterion = criterion
        self._kernels = {
            name: [keras.ops.convert_to_numpy(w.value) for w in prunable.get_prunable_weights(layer)]
            for name, layer, _ in measure.prunable_layers(model)
        }
        calibration = np.asarray(calibration)
        sizes = measure.int8_point(model, calibration, calibration[:1], np.zeros(1, np.int64))
        self.measured_gzip_bytes = sizes["gzip_bytes"]
        self.fixed_bytes = self.measured_gzip_bytes - gzip_size(self._kernel_bytes({}))

    def predict(self, sparsities: dict) -> int:
        """Predicted gzipped int8 file size in bytes.

        Args:
            sparsities: ``{layer name: sparsity}``; layers not named stay as they are.

        Returns:
            The predicted size, in bytes.
        """
        unknown = sorted(set(sparsities) - set(self._kernels))
        if unknown:
            raise ValueError(
                f"sparsities names layers the model does not prune: {unknown}. Received: sparsities={sparsities!r}"
            )
        return int(self.fixed_bytes + gzip_size(self._kernel_bytes(sparsities)))

    def _kernel_bytes(self, sparsities):
        kernels = []
        for name, values in self._kernels.items():
            level = float(sparsities.get(name, 0.0))
            for index, value in enumerate(values):
                if level > 0:
                    if self.criterion == "random":
                        mask, _ = masks.random_mask(value, level, index)
                    else:
                        mask, _ = masks.magnitude_mask(value, level)
                    value = value * keras.ops.convert_to_numpy(mask)
                kernels.append(value)
        return quantized_kernel_bytes(kernels)
