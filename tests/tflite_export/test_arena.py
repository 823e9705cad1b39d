"""The TFLite Micro arena estimate: tensors sharing bytes only when their lifetimes do not meet."""

import keras
import pytest

import tflite_export
from tflite_export.arena import estimate_arena

L = keras.layers


def _file(model, tmp_path, **kwargs):
    return tflite_export.convert(model, str(tmp_path / "m.tflite"), **{"batch_size": 1, **kwargs})


def test_a_chain_reuses_the_bytes_of_tensors_it_no_longer_needs(tmp_path):
    model = keras.Sequential([keras.Input((32,)), L.Dense(64), L.Dense(8)])
    estimate = estimate_arena(_file(model, tmp_path))
    # 32 floats in, 64 hidden, 8 out: the output takes the input's place once the input is read.
    assert estimate["arena_bytes"] == 128 + 256
    assert estimate["tensors"] == 3 and estimate["live_bytes_at_peak"] == 128 + 256


def test_a_skip_connection_keeps_its_input_alive(tmp_path):
    inputs = keras.Input((32,))
    hidden = L.Dense(32)(L.Dense(64)(inputs))
    model = keras.Model(inputs, L.Add()([inputs, hidden]))
    estimate = estimate_arena(_file(model, tmp_path))
    # While the 64-wide layer runs, the input (128 bytes) must stay for the Add.
    assert estimate["arena_bytes"] >= 128 + 256 + 128


def test_a_cnn_lies_between_its_busiest_op_and_the_sum_of_its_tensors(tmp_path):
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), L.Conv2D(8, 3, padding="same"), L.Conv2D(8, 3, padding="same"),
         L.GlobalAveragePooling2D(), L.Dense(10)]
    )  # fmt: skip
    path = _file(model, tmp_path)
    estimate = estimate_arena(path)
    activations = 16 * 16 * 3 * 4 + 2 * 16 * 16 * 8 * 4 + 8 * 4 + 10 * 4
    assert 16 * 16 * 8 * 4 * 2 <= estimate["arena_bytes"] <= activations + 16 * 5


def test_a_dynamic_batch_is_refused_with_the_fix(tmp_path):
    model = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    with pytest.raises(ValueError, match=r"dynamic shape .*batch_size=1"):
        estimate_arena(_file(model, tmp_path, batch_size=None))
