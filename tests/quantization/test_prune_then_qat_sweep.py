"""Pruning then sparsity-preserving QAT never fails at the int8 export.

A sweep over what users combine with ``--qat``: unstructured sparsity from 0.5 to
0.95, block and 2:4 patterns, several seeds. High sparsity empties whole filters
of the 3x3x1 first convolution (9 weights each), the case that made LiteRT refuse
the file; at 0.95 that layer keeps at most 7 of its 144 weights for 16 filters, so
those cases check that filters did empty and the sweep cannot pass vacuously. One
case runs the ``kopt-optimize`` command of the report on a small npz.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import tflite_export
from kopt import pruning
from kopt.quantization import quantize_model
from kopt.quantization import schemes

L = keras.layers
SCRIPT = os.path.join(os.path.dirname(sys.executable), "kopt-optimize")
CASES = (
    # Seeds matter where filters empty (0.9 and above); 0.5 and 0.8 leave every filter of conv1 some weights.
    [(f"unstructured-{level}-seed0", level, {}, 0) for level in (0.5, 0.8)]
    + [(f"unstructured-{level}-seed{seed}", level, {}, seed) for level in (0.9, 0.95) for seed in (0, 1, 2)]
    # Block sparsity needs matrices: the 1x1 convolution and the Dense layer.
    + [
        (f"block1x4-{level}", level, {"block_size": (1, 4), "layer_schedules": {"conv1": None, "conv2": None}}, 0)
        for level in (0.8, 0.9)
    ]
    + [("2of4-seed0", 0.5, {"sparsity_m_by_n": (2, 4)}, 0)]
)


def _cnn():
    inputs = keras.Input((28, 28, 1), name="image")
    x = L.Conv2D(16, 3, strides=2, activation="relu", name="conv1")(inputs)
    x = L.Conv2D(16, 3, strides=2, use_bias=False, name="conv2")(x)
    x = L.BatchNormalization(name="bn2")(x)
    x = L.ReLU()(x)
    x = L.Conv2D(16, 1, activation="relu", name="pointwise")(x)
    x = L.Flatten()(x)
    return keras.Model(inputs, L.Dense(10, name="logits")(x), name="sweep_cnn")


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="module")
def mnist(mnist_npz):
    data = np.load(mnist_npz)
    x_train = (data["x_train"][:4000, ..., None] / 255.0).astype("float32")
    x_test = (data["x_test"][:1000, ..., None] / 255.0).astype("float32")
    return x_train, data["y_train"][:4000].astype("int64"), x_test, data["y_test"][:1000].astype("int64")


@pytest.fixture(scope="module")
def baselines(mnist):
    """One trained float model per seed."""
    x_train, y_train, _, _ = mnist
    models = {}
    for seed in sorted({case[3] for case in CASES}):
        keras.utils.set_random_seed(seed)
        model = _cnn()
        model.compile(keras.optimizers.Adam(3e-3), _loss())
        model.fit(x_train, y_train, batch_size=64, epochs=1, verbose=0)
        models[seed] = model
    return models


@pytest.mark.slow
@pytest.mark.parametrize("name, level, pattern, seed", CASES, ids=[case[0] for case in CASES])
def test_prune_then_preserving_qat_exports_an_integer_file(tmp_path, mnist, baselines, name, level, pattern, seed):
    x_train, y_train, x_test, y_test = mnist
    keras.utils.set_random_seed(seed)
    base = keras.models.clone_model(baselines[seed])
    base.set_weights(baselines[seed].get_weights())
    schedule = pruning.PolynomialDecay(0.0, level, begin_step=0, end_step=40, frequency=10)
    pruned = pruning.prune_low_magnitude(base, schedule, **pattern)
    pruned.compile(keras.optimizers.Adam(1e-3), _loss())
    pruned.fit(
        x_train[:3200], y_train[:3200], batch_size=64, epochs=1, verbose=0, callbacks=[pruning.UpdatePruningStep()]
    )
    stripped = pruning.strip_pruning(pruned)
    if level >= 0.95 and not pattern:
        # Each case checks itself: pytest-xdist spreads the cases over workers, so a
        # separate test that read what the others recorded saw only its worker's share.
        assert pruning.empty_channels(stripped)["empty"] > 0, pruning.empty_channels(stripped)

    qat = quantize_model(stripped, scheme=schemes.Default8BitPrunePreserveQuantizeScheme())
    qat.compile(keras.optimizers.Adam(1e-4), _loss())
    qat.fit(x_train[:1280], y_train[:1280], batch_size=64, epochs=1, verbose=0)
    path = tflite_export.convert(qat, str(tmp_path / f"{name}.tflite"), mode="int8")
    ok, reasons = tflite_export.is_fully_integer(path)
    assert ok, reasons
    result = tflite_export.verify(path, qat, [(x_test, y_test)])  # allocates and runs the file
    assert result["agreement"] >= 0.98, result


@pytest.mark.slow
def test_kopt_optimize_prune_08_qat_on_28x28_digits_exports(tmp_path, mnist_subset):
    """The command of the report, on 3000 MNIST images so it fits a test."""
    mnist_subset("mnist-small.npz", 3000, 1000)
    result = subprocess.run(
        [SCRIPT, "--dataset=npz:mnist-small.npz", "--epochs=1", "--prune=0.8", "--qat", "--report=r.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    optimized = report["optimized"]
    assert optimized["tflite_mode"] == "int8" and optimized["tflite_agreement"] >= 0.995, optimized
    assert isinstance(optimized["empty_channels"], int)
