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


def _sequences(count=96, steps=6, features=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=count)
    sequences = rng.normal(size=(count, steps, features)).astype("float32") + labels[:, None, None]
    return sequences, labels


def test_kopt_calibration_keeps_the_loop_and_computes_the_calibrated_model(tmp_path):
    """A recurrent model's file from kopt's calibration holds the loop (one WHILE), not one step per time step."""
    import tflite_export

    x, y = _sequences()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 4)), keras.layers.LSTM(8, name="rnn"), keras.layers.Dense(3)])
    assert measure.int8_calibration(model) == "kopt" and measure.int8_calibration(model, "converter") == "converter"
    assert measure.int8_calibration(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])) == "converter"
    paths = {by: str(tmp_path / f"{by}.tflite") for by in measure.INT8_CALIBRATIONS}
    points = {by: measure.int8_point(model, x[:32], x, y, path=paths[by], calibrated_by=by) for by in paths}
    ops = {by: tflite_export.inspect(path)["op_counts"] for by, path in paths.items()}
    assert ops["kopt"].get("WHILE") == 1 and "WHILE" not in ops["converter"]  # the converter's is unrolled
    assert points["kopt"]["bytes"] < points["converter"]["bytes"]
    # The file is the calibrated QAT model's, which the kopt-optimize stage exports.
    calibrated = measure.calibrated_int8_model(model, x[:32])
    expected = np.argmax(calibrated.predict(x, verbose=0), axis=-1)
    assert np.mean(np.argmax(tflite_export.predict(paths["kopt"], x), axis=-1) == expected) >= 0.97


def test_an_unknown_calibration_is_refused_by_name():
    import pytest

    with pytest.raises(ValueError, match="Received: int8_calibration='tflite'"):
        measure.int8_calibration(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), "tflite")


def test_a_one_score_model_is_scored_by_its_threshold():
    logit = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name="score")])
    logit.get_layer("score").set_weights([np.ones((1, 1), "float32"), np.zeros(1, "float32")])
    x = np.array([[-2.0], [-0.5], [0.3], [4.0]], "float32")
    # An argmax over the one column would call all four class 0 (50%).
    assert measure.accuracy(logit, x, np.array([0, 0, 1, 1])) == 100.0
    sigmoid = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, activation="sigmoid", name="score")])
    sigmoid.get_layer("score").set_weights([np.ones((1, 1), "float32"), np.zeros(1, "float32")])
    assert measure.accuracy(sigmoid, x, np.array([0, 1, 1, 1])) == 75.0  # sigmoid(-0.5) < 0.5 is class 0
