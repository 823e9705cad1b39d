"""kopt-optimize on the models the brief judges it by beyond CNNs: an LSTM over MNIST rows, a Transformer over tokens.

Before, ``npz:`` archives were images only: an LSTM taking ``(28, 28)`` was refused against the
``(28, 28, 1)`` digits, and ``(N, T)`` token ids were refused outright. Once the LSTM was let in,
its structured-then-QAT run failed at the int8 export (the converter calibrated the float loop
with the training data; see ``test_recurrent``), so the run checks that the export leaves the
loop to the QAT model's ranges.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kopt  # noqa: F401  (registers kopt's layers, which the optimized .keras file holds)
from tests.cli.in_process import is_refused
from tests.cli.in_process import refused

SCRIPT = os.path.join(os.path.dirname(sys.executable), "kopt-optimize")


def _run(args, cwd):
    if not os.path.isfile(SCRIPT):
        pytest.fail(f"{SCRIPT} is missing: install kopt (pip install -e '.[cpu,test]') before testing")
    return subprocess.run([SCRIPT, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_an_lstm_over_digit_rows_is_pruned_by_units_and_exports_int8(tmp_path, monkeypatch, mnist_subset):
    mnist_subset("rows.npz", 1200, 150)
    inputs = keras.Input((28, 28), name="rows")
    hidden = keras.layers.LSTM(32, name="lstm")(inputs)
    keras.Model(inputs, keras.layers.Dense(10, name="head")(hidden)).save(tmp_path / "lstm.keras")

    flags = ["--model=lstm.keras", "--dataset=npz:rows.npz", "--epochs=1", "--finetune_epochs=1"]
    result = _run([*flags, "--prune_structured=0.5", "--qat", "--report=report.json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fed without their channel axis" in result.stderr
    assert "the loop of quant_lstm stays float" in result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["dataset"]["input_shape"] == [28, 28]
    baseline, optimized = report["baseline"], report["optimized"]
    assert optimized["tflite_mode"] == "int8" and optimized["params"] < 0.5 * baseline["params"]
    assert optimized["tflite_agreement"] >= 0.95
    loaded = keras.models.load_model(tmp_path / "kopt_export" / "optimized.keras")
    assert loaded.input_shape == (None, 28, 28)

    # Distillation's built-in students are CNNs: refused by name before the baseline trains.
    result = refused([*flags[:3], "--distill", "--export_dir=refused"], tmp_path, monkeypatch)
    is_refused(result, "--student=tiny_cnn: the built-in students take images", tmp_path, export_dir="refused")


@pytest.mark.slow
def test_a_transformer_over_token_ids_is_pruned_and_exports_int8(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 64, (900, 12))
    labels = (tokens[:, :3] < 32).sum(axis=1)  # how many of the first three tokens are small: 0-3
    np.savez(
        tmp_path / "tokens.npz", x_train=tokens[:800], y_train=labels[:800], x_test=tokens[800:], y_test=labels[800:]
    )
    inputs = keras.Input((12,), dtype="int32", name="tokens")
    embedded = keras.layers.Embedding(64, 16, name="embedding")(inputs)
    attended = keras.layers.MultiHeadAttention(2, 8, name="attention")(embedded, embedded)
    hidden = keras.layers.LayerNormalization(name="norm")(keras.layers.Add()([embedded, attended]))
    hidden = keras.layers.GlobalAveragePooling1D(name="pool")(hidden)
    keras.Model(inputs, keras.layers.Dense(4, name="head")(hidden), name="encoder").save(tmp_path / "encoder.keras")

    args = ["--model=encoder.keras", "--dataset=npz:tokens.npz", "--epochs=2", "--finetune_epochs=1"]
    result = _run([*args, "--prune=0.5", "--qat", "--report=report.json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["dataset"]["input_shape"] == [12]
    optimized = report["optimized"]
    assert optimized["tflite_mode"] == "int8" and optimized["sparsity"] >= 0.45
    assert optimized["tflite_agreement"] >= 0.9
    assert optimized["tflite_gzip_bytes"] < report["baseline"]["tflite_gzip_bytes"]

    # The built-in CNNs cannot read token ids: refused by name, before any training.
    result = refused(["--dataset=npz:tokens.npz", "--epochs=1", "--export_dir=refused"], tmp_path, monkeypatch)
    is_refused(result, "--model=small_cnn: the built-in models take images", tmp_path, export_dir="refused")
