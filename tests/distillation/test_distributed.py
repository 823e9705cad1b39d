"""The Distiller under tf.distribute.MirroredStrategy on two logical CPUs trains as one device does."""

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
    from kopt.distillation import Distiller

    def classifier(width, seed):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((6, 6, 1))
        x = keras.layers.Conv2D(width, 3)(inputs)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 6, 1)).astype("float32")
    y = rng.integers(0, 3, size=64)

    def train(strategy, duplicate):
        with strategy.scope():
            teacher = classifier(8, seed=2)
            distiller = Distiller(classifier(2, seed=1), teacher, alpha=0.3, temperature=3.0)
            distiller.compile(keras.optimizers.SGD(0.1), metrics=["accuracy"])
        teacher_before = [np.array(w) for w in teacher.get_weights()]
        inputs, labels, batch_size = x, y, 8
        if duplicate:
            # Global batch i is [b_i, b_i]: each replica gets b_i, and BatchNormalization
            # (which normalizes each replica's batch) sees what one device sees.
            inputs = np.concatenate([np.concatenate([x[i:i + 8]] * 2) for i in range(0, 64, 8)])
            labels = np.concatenate([np.concatenate([y[i:i + 8]] * 2) for i in range(0, 64, 8)])
            batch_size = 16
        history = distiller.fit(inputs, labels, batch_size=batch_size, epochs=2, shuffle=False, verbose=0).history
        for before, after in zip(teacher_before, teacher.get_weights()):
            assert np.array_equal(before, after)
        return distiller.student.get_weights(), history

    single, single_history = train(tf.distribute.OneDeviceStrategy("/cpu:0"), duplicate=False)
    mirrored, mirrored_history = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), duplicate=True)
    assert len(single) == len(mirrored) == 8
    for expected, actual in zip(single, mirrored):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    for key in ("loss", "student_loss", "distillation_loss", "accuracy"):
        np.testing.assert_allclose(mirrored_history[key], single_history[key], rtol=1e-5, atol=1e-6, err_msg=key)
    print("DISTRIBUTED_OK")
    """
)


@pytest.mark.slow
@pytest.mark.distributed
def test_mirrored_strategy_matches_one_device_when_replicas_see_its_batch():
    # A subprocess: logical devices must be configured before TensorFlow
    # initializes its devices, which this process has already done.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert "DISTRIBUTED_OK" in result.stdout, result.stdout[-3000:] + result.stderr[-5000:]
