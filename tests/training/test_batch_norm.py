"""reestimate_batch_norm: the cumulative average of batch statistics, in inference mode otherwise."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kopt import quantization
from kopt.training import reestimate_batch_norm
from kopt.training.batch_norm import batch_norm_layers

L = keras.layers


def _batches(count=3, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(loc=i, size=(16, 4)).astype("float32"), np.zeros(16, "int32")) for i in range(count)]


def test_statistics_are_the_mean_of_the_batch_statistics_and_the_layer_is_restored():
    model = keras.Sequential([keras.Input((4,)), L.Dense(4, name="dense"), L.BatchNormalization(name="bn")])
    batches = _batches()
    assert reestimate_batch_norm(model, batches, batches=2) == ["bn"]
    features = [keras.ops.convert_to_numpy(model.get_layer("dense")(x)) for x, _ in batches[:2]]
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([f.mean(0) for f in features], 0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([f.var(0) for f in features], 0), rtol=1e-5)
    assert bn.momentum == 0.99 and "call" not in vars(bn)
    before = keras.ops.convert_to_numpy(model(batches[2][0], training=False))
    moving = bn.moving_mean.numpy().copy()
    assert np.allclose(keras.ops.convert_to_numpy(model(batches[2][0], training=False)), before)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), moving)  # inference reads them again, not batch ones


def test_dropout_and_augmentation_stay_off_and_frozen_or_wrapped_layers_keep_theirs():
    inputs = keras.Input((4,))
    x = L.GaussianNoise(1.0, name="noise")(inputs)  # active only in training
    x = L.Dropout(0.9, name="drop")(x)
    live = L.BatchNormalization(name="live")(x)
    frozen_layer = L.BatchNormalization(name="frozen")
    frozen_layer.trainable = False
    inner = keras.Sequential([keras.Input((4,)), L.BatchNormalization(name="nested")], name="inner")
    model = keras.Model(inputs, [live, frozen_layer(inner(x))])
    batches = _batches(2)
    assert sorted(reestimate_batch_norm(model, batches)) == ["live", "nested"]
    expected = np.mean([x.mean(0) for x, _ in batches], 0)  # the clean inputs, neither noised nor dropped
    np.testing.assert_allclose(model.get_layer("live").moving_mean.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(inner.get_layer("nested").moving_mean.numpy(), expected, rtol=1e-5)
    np.testing.assert_array_equal(frozen_layer.moving_mean.numpy(), np.zeros(4))


def test_a_quantization_aware_model_has_its_batch_norm_folded_and_is_left_alone():
    model = keras.Sequential([keras.Input((6, 6, 1)), L.Conv2D(2, 3), L.BatchNormalization(), L.ReLU()])
    qat = quantization.quantize_model(model)
    assert batch_norm_layers(qat) == []

    def unread():
        raise AssertionError("the data must not be read")
        yield

    assert reestimate_batch_norm(qat, unread()) == []


def test_bad_arguments_are_named():
    model = keras.Sequential([keras.Input((4,)), L.BatchNormalization()])
    with pytest.raises(ValueError, match="Received: batches=0"):
        reestimate_batch_norm(model, _batches(), batches=0)
    with pytest.raises(ValueError, match="holds no batch"):
        reestimate_batch_norm(model, [])


_MIRRORED = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from kopt.training import reestimate_batch_norm

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(name="bn")])
        reestimate_batch_norm(model, [np.full((4, 3), 2.0, "float32"), np.full((4, 3), 4.0, "float32")])
    copies = model.get_layer("bn").moving_mean.value.values
    assert len(copies) == 2 and all(np.allclose(c.numpy(), 3.0) for c in copies), copies
    print("MIRRORED_OK")
    """
)


@pytest.mark.distributed
def test_under_a_mirrored_strategy_every_replica_gets_the_statistics():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True, timeout=300, env=env)
    assert "MIRRORED_OK" in result.stdout, result.stdout[-3000:] + result.stderr[-5000:]


def test_the_module_examples_run():
    import doctest

    from kopt.training import batch_norm

    assert doctest.testmod(batch_norm).failed == 0
