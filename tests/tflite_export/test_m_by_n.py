"""Tests for tflite_export.m_by_n: M:N blocks of weight arrays and files."""

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export import m_by_n


def test_blocks_count_along_the_axis_and_pad_the_last_one():
    values = np.array([[0, 0, 1, 1, 0, 5], [1, 1, 1, 0, 0, 0]], np.float32)
    result = m_by_n.check_blocks("w", values, 1, 2, 4)
    # Row 0: [0 0 1 1] ok, [0 5 pad pad] ok; row 1: [1 1 1 0] violates, [0 0 pad pad] ok.
    assert (result["blocks"], result["violating_blocks"], result["ok"]) == (4, 1, False)


def test_zero_point_counts_as_zero():
    values = np.array([[3, 3, 7, 9]], np.int8)
    assert m_by_n.check_blocks("w", values, 1, 2, 4, zero_point=3)["ok"]


@pytest.mark.parametrize("m, n, match", [(0, 4, "m=0"), (2, 2, "m=2, n=2"), (True, 4, "m=True")])
def test_bad_patterns_name_the_values(m, n, match):
    with pytest.raises(ValueError, match=match):
        m_by_n.check_pattern(m, n)


def test_file_check_reads_fully_connected_weights(tmp_path):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    kernel = np.ones((8, 4), np.float32)
    kernel[::2] = 0.0  # two zeros in every block of four input channels
    model.layers[0].kernel.assign(kernel)
    path = tflite_export.convert(model, tmp_path / "m.tflite")
    report = m_by_n.check_file_m_by_n(path, 2, 4)
    assert report["ok"] and len(report["tensors"]) == 1
    assert not m_by_n.check_file_m_by_n(path, 3, 4)["ok"]
