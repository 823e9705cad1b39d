"""The int8 gzip size predictor against real converted files."""

import keras
import numpy as np
import pytest

from kopt.auto import measure
from kopt.auto.size import SizeModel
from kopt.auto.size import quantized_kernel_bytes


def test_prediction_tracks_the_real_file(trained):
    model, fit, _ = trained
    sizes = SizeModel(model, fit[0][:64])
    assert sizes.predict({}) == sizes.measured_gzip_bytes
    pruned = keras.models.clone_model(model)
    pruned.set_weights(model.get_weights())
    kernel = pruned.get_layer("hidden").kernel
    values = kernel.numpy()
    values[np.abs(values) < np.quantile(np.abs(values), 0.8)] = 0
    kernel.assign(values)
    real = measure.int8_point(pruned, fit[0][:64], fit[0][:2], fit[1][:2])["gzip_bytes"]
    predicted = sizes.predict({"hidden": 0.8})
    assert predicted < sizes.measured_gzip_bytes
    assert predicted == pytest.approx(real, rel=0.1)
    with pytest.raises(ValueError, match="nope"):
        sizes.predict({"nope": 0.5})


def test_kernels_are_laid_out_output_channel_first():
    kernel = np.zeros((3, 2), "float32")
    kernel[:, 0] = [1.0, 0.5, -1.0]
    data = np.frombuffer(quantized_kernel_bytes([kernel]), np.int8)
    assert data.tolist() == [127, 64, -127, 0, 0, 0]
