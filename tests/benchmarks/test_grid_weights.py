"""benchmarks.grid_weights: a row's bookkeeping and the report, on a small LSTM and 256 digits."""

import keras
import pytest

from benchmarks import grid_weights


def test_a_row_compares_float32_and_int8_loop_kernels_of_one_function(tmp_path, monkeypatch):
    monkeypatch.setitem(grid_weights.MODELS, "small", (lambda: grid_weights._rows(keras.layers.LSTM(32)), "rows"))
    row = grid_weights.measure("small", 0, str(tmp_path), limit=256, rounds=1, calls=2)
    # 4 * 32 * (28 + 32) kernel values: three bytes each saved, less the DEQUANTIZE ops and tensor names.
    assert row["float32_bytes"] - row["int8_bytes"] > 0.75 * 3 * 4 * 32 * 60
    assert row["agreement"] == 1.0 and row["max_abs_diff"] == 0.0
    assert row["float32_accuracy"] == row["int8_accuracy"]
    assert row["latency_ratio"] == pytest.approx(row["int8_ms"] / row["float32_ms"], rel=0.05)
    text = grid_weights.report([row])
    assert "| small | 0 |" in text and "grid_weights_int8=False" in text


def test_clips_move_one_pixel_per_frame():
    x_train, y_train, x_test, _ = grid_weights.load_digits("clips", limit=8)
    assert x_train.shape == (8, grid_weights.FRAMES, 28, 28, 1) and len(y_train) == 8
    assert (x_train[:, 1, :, 1:, 0] == x_train[:, 0, :, :-1, 0]).all()
