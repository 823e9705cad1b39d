"""benchmarks.time_folding: a row's bookkeeping and the report, on a small clip model."""

import keras
import numpy as np
import pytest

from benchmarks import time_folding


def _small_clips():
    clip = keras.Input((time_folding.FRAMES, 8, 8, 3))
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3), name="frame_conv")(clip)
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D(), name="frame_gap")(x)
    return keras.Model(clip, keras.layers.Dense(3)(keras.layers.Flatten()(x)))


def test_a_row_compares_the_looped_and_folded_files_of_one_function(tmp_path, monkeypatch):
    monkeypatch.setitem(time_folding.MODELS, "small", (_small_clips, "clips"))
    monkeypatch.setattr(
        time_folding,
        "_inputs",
        lambda kind: np.random.default_rng(0).random((16, time_folding.FRAMES, 8, 8, 3)).astype("float32"),
    )
    row = time_folding.measure("small", 0, str(tmp_path), rounds=1, calls=2)
    assert row["folded_ops"] < row["looped_ops"]  # one convolution, not one per frame
    assert row["looped_agreement"] == row["folded_agreement"] == 1.0
    assert max(row["looped_max_abs_diff"], row["folded_max_abs_diff"]) < 1e-5
    # From the unrounded medians: the 4-decimal milliseconds of a tiny file give it to about 1%.
    assert row["latency_ratio"] == pytest.approx(row["folded_ms"] / row["looped_ms"], rel=0.05)
    text = time_folding.report([row])
    assert "| small | 0 |" in text and "fold_time_distributed=False" in text
