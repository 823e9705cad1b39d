"""Tests for benchmarks/core/latency.py: every file takes its turn in every round."""

import os
import sys

import keras
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import tflite_export  # noqa: E402
from benchmarks.core import latency  # noqa: E402


class _Recorder:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def invoke(self):
        self.log.append(self.name)


def test_interleaved_ms_takes_turns_and_returns_one_figure_per_key():
    log = []
    result = latency.interleaved_ms({"a": _Recorder("a", log), "b": _Recorder("b", log)}, rounds=3, calls=2)
    assert log == ["a", "a", "b", "b"] * 3
    assert set(result) == {"a", "b"} and all(value >= 0 for value in result.values())


def test_ready_interpreter_runs_a_batch_one_file_with_and_without_xnnpack(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tflite_export.convert(model, tmp_path / "m.tflite", batch_size=1)
    for xnnpack in (True, False):
        interpreter = latency.ready_interpreter(str(path), xnnpack=xnnpack)
        output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        inputs = np.random.default_rng(1).random((1, 4)).astype(np.float32)
        np.testing.assert_allclose(output, model.predict(inputs, verbose=0), rtol=1e-5, atol=1e-6)
