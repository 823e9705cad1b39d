"""tflite_export.benchmark: structure, validation, inputs and run counts (never speed)."""

import math
import os
import re

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import tflite_export
from tflite_export import benchmark
from tflite_export import format_benchmark

ENTRY_KEYS = {"median_ms", "p90_ms", "min_ms", "runs", "warmup", "threads", "batch_size", "amx"}


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    directory = tmp_path_factory.mktemp("benchmark")
    calibration = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    return {
        "float32": tflite_export.convert(model, os.path.join(directory, "float32.tflite")),
        "int8_io": tflite_export.convert(
            model,
            os.path.join(directory, "int8_io.tflite"),
            mode="int8",
            representative_dataset=calibration,
            inference_input_type="int8",
            inference_output_type="int8",
        ),
    }


@pytest.fixture
def calls(monkeypatch):
    """Records every invoke() and every set_tensor() of any LiteRT interpreter."""
    record = {"invoke": 0, "inputs": []}
    original_invoke, original_set_tensor = Interpreter.invoke, Interpreter.set_tensor

    def invoke(self):
        record["invoke"] += 1
        return original_invoke(self)

    def set_tensor(self, index, value):
        record["inputs"].append(np.array(value))
        return original_set_tensor(self, index, value)

    monkeypatch.setattr(Interpreter, "invoke", invoke)
    monkeypatch.setattr(Interpreter, "set_tensor", set_tensor)
    return record


def test_both_settings_are_timed(paths):
    result = benchmark(paths["float32"], runs=4, warmup=1, threads=2)
    assert list(result) == ["xnnpack", "no_xnnpack"]
    for entry in result.values():
        assert set(entry) == ENTRY_KEYS
        assert entry["runs"] == 4 and entry["warmup"] == 1 and entry["threads"] == 2 and entry["batch_size"] == 1
        assert all(math.isfinite(entry[key]) and entry[key] > 0 for key in ("median_ms", "p90_ms", "min_ms"))
        assert entry["min_ms"] <= entry["median_ms"] <= entry["p90_ms"]


def test_runs_and_warmup_are_honoured(paths, calls):
    benchmark(paths["float32"], runs=7, warmup=3)
    assert calls["invoke"] == 2 * (7 + 3)
    calls["invoke"] = 0
    benchmark(paths["float32"], runs=5, warmup=0, xnnpack=False)
    assert calls["invoke"] == 5


def test_inputs_follow_batch_size_dtype_and_seed(paths, calls):
    benchmark(paths["float32"], runs=1, warmup=0, batch_size=4, seed=7)
    first, second = calls["inputs"]
    assert first.shape == (4, 6) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)  # both settings see the same inputs
    calls["inputs"].clear()
    benchmark(paths["float32"], runs=1, warmup=0, batch_size=4, seed=7, xnnpack=True)
    np.testing.assert_array_equal(calls["inputs"][0], first)
    calls["inputs"].clear()
    benchmark(paths["float32"], runs=1, warmup=0, batch_size=4, seed=8, xnnpack=True)
    assert not np.array_equal(calls["inputs"][0], first)
    calls["inputs"].clear()
    result = benchmark(paths["int8_io"], runs=2, warmup=0, batch_size=3, xnnpack=(False, True))
    assert list(result) == ["no_xnnpack", "xnnpack"] and result["xnnpack"]["batch_size"] == 3
    values = calls["inputs"][0]
    assert values.shape == (3, 6) and values.dtype == np.int8
    assert values.min() < -64 and values.max() > 64  # spread over the int8 range


def test_bytes_are_accepted(paths):
    with open(paths["float32"], "rb") as handle:
        result = benchmark(handle.read(), runs=2, warmup=0, xnnpack=True)
    assert list(result) == ["xnnpack"] and result["xnnpack"]["runs"] == 2


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"runs": 0}, "runs=0"),
        ({"runs": 2.5}, "runs=2.5"),
        ({"runs": True}, "runs=True"),
        ({"warmup": -1}, "warmup=-1"),
        ({"threads": 0}, "threads=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"seed": 1.5}, "seed=1.5"),
        ({"xnnpack": ()}, "xnnpack=()"),
        ({"xnnpack": (True, True)}, "xnnpack=(True, True)"),
        ({"xnnpack": "on"}, "xnnpack='on'"),
        ({"xnnpack": (1, 0)}, "xnnpack=(1, 0)"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(tmp_path, calls, kwargs, received):
    # The file does not exist either: the argument is checked first.
    with pytest.raises(ValueError, match=re.escape(f"Received: {received}") + "$"):
        benchmark(os.path.join(tmp_path, "missing.tflite"), **kwargs)
    assert calls["invoke"] == 0


def test_bad_files_are_refused(tmp_path, paths):
    with pytest.raises(ValueError, match="existing '.tflite' file"):
        benchmark(os.path.join(tmp_path, "missing.tflite"))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"junk" * 10)
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        benchmark(junk)


def test_format_benchmark(paths):
    text = format_benchmark(benchmark(paths["float32"], runs=2, warmup=0, threads=1))
    assert re.fullmatch(
        r"xnnpack +median [\d.]+ ms  p90 [\d.]+ ms  \(2 runs, 1 thread, batch 1(, AMX)?\)\n"
        r"no_xnnpack +median [\d.]+ ms  p90 [\d.]+ ms  \(2 runs, 1 thread, batch 1(, AMX)?\)",
        text,
    )
