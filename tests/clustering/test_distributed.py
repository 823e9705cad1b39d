"""Clustering under tf.distribute.MirroredStrategy on two logical CPUs."""

import os
import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from kopt import clustering

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def train(strategy, duplicate):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            inputs = keras.Input((6, 6, 2))
            x = keras.layers.Conv2D(4, 3)(inputs)
            x = keras.layers.Flatten()(x)
            model = keras.Model(inputs, keras.layers.Dense(3)(x))
            clustered = clustering.cluster_weights(model, 4, "LINEAR", preserve_sparsity=True)
            clustered.compile(keras.optimizers.SGD(0.05), "mse")
        rng = np.random.default_rng(2)
        x, y = rng.normal(size=(48, 6, 6, 2)).astype("float32"), rng.normal(size=(48, 3)).astype("float32")
        if duplicate:
            # Global batch i is [b_i, b_i]: each replica gets b_i, so the mean gradient is b_i's.
            x = np.concatenate([np.concatenate([x[i:i + 8]] * 2) for i in range(0, 48, 8)])
            y = np.concatenate([np.concatenate([y[i:i + 8]] * 2) for i in range(0, 48, 8)])
        clustered.fit(x, y, batch_size=16 if duplicate else 8, epochs=2, shuffle=False, verbose=0)
        stripped = clustering.strip_clustering(clustered)
        return [np.array(w.numpy()) for w in clustered.weights], [np.array(w) for w in stripped.get_weights()]

    single, single_stripped = train(tf.distribute.OneDeviceStrategy("/cpu:0"), duplicate=False)
    both, both_stripped = train(strategy, duplicate=True)
    assert len(single) == len(both)
    for expected, actual in zip(single + single_stripped, both + both_stripped):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    kernels = [w for w in both_stripped if w.ndim > 1]
    assert len(kernels) == 2 and all(len(np.unique(k)) <= 4 for k in kernels)
    print("DISTRIBUTED_OK")
    """
)


@pytest.mark.slow
@pytest.mark.distributed
def test_mirrored_strategy_trains_as_one_device():
    # A subprocess: logical devices must be configured before TensorFlow
    # initializes its devices, which this process has already done.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert "DISTRIBUTED_OK" in result.stdout, result.stdout[-3000:] + result.stderr[-5000:]
