"""Sparsity and the per-model measurement."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt.pipeline import kernel_sparsity
from kopt.pipeline.classifier_training import compile_classifier
from kopt.pipeline.model_metrics import measure


def test_kernel_sparsity_counts_kernels_only():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5), keras.layers.Dense(2)])
    first = model.layers[0]
    kernel = np.ones((4, 5), np.float32)
    kernel[:2] = 0.0
    first.kernel.assign(kernel)
    first.bias.assign(np.zeros(5, np.float32))  # biases never count
    model.layers[1].kernel.assign(np.ones((5, 2), np.float32))
    assert kernel_sparsity(model) == pytest.approx(10 / 30)


def test_measure_exports_and_scores(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    compile_classifier(model, 1e-3)
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = np.argmax(model.predict(x, verbose=0), -1)
    test = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    entry = measure(model, test, str(tmp_path / "m.tflite"))
    assert entry["keras_accuracy"] == 1.0 and entry["tflite_accuracy"] == 1.0
    assert entry["tflite_agreement"] == 1.0
    assert entry["params"] == 8 and entry["sparsity"] == 0.0
    assert entry["tflite_bytes"] == (tmp_path / "m.tflite").stat().st_size
    assert 0 < entry["tflite_gzip_bytes"] < entry["tflite_bytes"] * 2


def test_params_leave_out_masks_and_ranges_of_preserving_qat():
    from kopt.pipeline.model_metrics import deployed_params
    from kopt.quantization import quantize_model
    from kopt.quantization import schemes

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    qat = quantize_model(model, scheme=schemes.Default8BitPrunePreserveQuantizeScheme())
    assert deployed_params(model) == model.count_params() == 36 + 16 + 144 * 3 + 3
    # Folded: the BatchNormalization's four vectors became the convolution's bias.
    assert deployed_params(qat) == 36 + 4 + 144 * 3 + 3
    assert qat.count_params() > 2 * deployed_params(qat) - 50  # masks double the count
