"""Accuracy, sparsity and the int8 point of a candidate model."""

import keras
import numpy as np

from kopt.auto import measure
from kopt.pruning import kernel_sparsity


def test_sparsity_counts_prunable_weights_only(trained):
    model = trained[0]
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    kernel = copy.get_layer("hidden").kernel
    kernel.assign(np.where(np.arange(kernel.shape[1]) < 32, 0.0, kernel.numpy()))  # half the columns
    assert [name for name, _, _ in measure.prunable_layers(copy)] == ["hidden", "head"]
    assert measure.layer_sparsities(copy) == {"hidden": 0.5, "head": 0.0}
    total = 16 * 64 + 64 * 4
    assert kernel_sparsity(copy, prunable_only=True) == np.float64(16 * 32 / total)


def test_int8_point_scores_the_file(trained, tmp_path):
    model, _, (x_val, y_val) = trained
    point = measure.int8_point(model, x_val[:64], x_val, y_val, path=str(tmp_path / "m.tflite"))
    assert (tmp_path / "m.tflite").is_file()
    assert abs(point["accuracy"] - measure.accuracy(model, x_val, y_val)) < 2.0
    assert 0 < point["gzip_bytes"] < point["bytes"]
