"""Quantization-aware training under tf.distribute.MirroredStrategy on two logical CPUs."""

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
    from tensorflow.python.distribute import values as distribute_values
    from kopt import quantization as quant
    from kopt.quantization.fake_quant import fake_quant

    def numpy(x):
        return keras.ops.convert_to_numpy(x)

    # One strategy for the whole script: a second MirroredStrategy in the same
    # process reuses collective instance keys and its all-reduces get mixed up.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    # 1. One step: every range is one mirrored value, the mean of the replicas' updates.
    with strategy.scope():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((5,), name="features")
        model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(inputs))
        qat = quant.quantize_model(model)
        qat.compile(keras.optimizers.SGD(0.1), "mse")
    kernel, bias = (np.array(numpy(w)) for w in qat.get_layer("quant_fc").layer.weights)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5)).astype("float32")
    x[8:] *= 3.0  # the two replicas see different ranges
    y = rng.normal(size=(16, 3)).astype("float32")
    qat.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)

    range_variables = [w for w in qat.weights if w.name.endswith(("_min", "_max"))]
    assert len(range_variables) == 6, [w.path for w in range_variables]
    for variable in range_variables:
        inner = variable.value
        assert isinstance(inner, distribute_values.MirroredVariable), (variable.path, type(inner))
        per_replica = [np.array(v.numpy()) for v in inner.values]
        assert len(per_replica) == 2 and np.array_equal(per_replica[0], per_replica[1]), variable.path

    halves = (x[:8], x[8:])
    input_ranges = [(h.min(), h.max()) for h in halves]
    quantize = qat.get_layer("quantize_features")
    low, high = (float(numpy(w)) for w in quantize.weights)
    np.testing.assert_allclose([low, high], np.mean(input_ranges, axis=0), rtol=1e-6)
    assert abs(low - x.min()) > 0.1  # the mean of the replicas, not the global batch range

    # Each replica quantized its half with its own first-batch range, then ran the
    # layer with the per-tensor symmetric int8 kernel.
    magnitude = np.abs(kernel).max()
    quantized_kernel = numpy(fake_quant(kernel, -magnitude, magnitude, narrow_range=True))
    outputs = [numpy(fake_quant(h, lo, hi)) @ quantized_kernel + bias for h, (lo, hi) in zip(halves, input_ranges)]
    expected = np.mean([(o.min(), o.max()) for o in outputs], axis=0)
    fc = {w.name: float(numpy(w)) for w in qat.get_layer("quant_fc").weights if w.name.startswith("activation")}
    np.testing.assert_allclose([fc["activation_output_min"], fc["activation_output_max"]], expected, rtol=1e-5)

    # 2. Both replicas seeing the same data train exactly as one device does.
    def train(strategy, duplicate):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            inputs = keras.Input((6, 6, 2))
            x = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
            x = keras.layers.Flatten()(x)
            qat = quant.quantize_model(keras.Model(inputs, keras.layers.Dense(3)(x)))
            qat.compile(keras.optimizers.SGD(0.05), "mse")
        rng = np.random.default_rng(2)
        x, y = rng.normal(size=(48, 6, 6, 2)).astype("float32"), rng.normal(size=(48, 3)).astype("float32")
        if duplicate:
            # Global batch i is [b_i, b_i]: replica 0 and replica 1 each get b_i.
            x = np.concatenate([np.concatenate([x[i:i + 8]] * 2) for i in range(0, 48, 8)])
            y = np.concatenate([np.concatenate([y[i:i + 8]] * 2) for i in range(0, 48, 8)])
        qat.fit(x, y, batch_size=16 if duplicate else 8, epochs=2, shuffle=False, verbose=0)
        # Layer names differ between the two models (dense, dense_1): compare in order.
        return [(w.name, np.array(numpy(w))) for w in qat.weights]

    single = train(tf.distribute.OneDeviceStrategy("/cpu:0"), duplicate=False)
    both = train(strategy, duplicate=True)
    assert [name for name, _ in single] == [name for name, _ in both]
    ranges = [value for name, value in single if name.endswith(("_min", "_max"))]
    assert len(ranges) >= 6 and all(np.any(value != 0) for value in ranges[:2])
    for (name, expected), (_, actual) in zip(single, both):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=name)
    print("DISTRIBUTED_OK")
    """
)


@pytest.mark.slow
@pytest.mark.distributed
def test_mirrored_strategy_ranges_and_equivalence_with_one_device():
    # A subprocess: logical devices must be configured before TensorFlow
    # initializes its devices, which this process has already done.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert "DISTRIBUTED_OK" in result.stdout, result.stdout[-3000:] + result.stderr[-5000:]
