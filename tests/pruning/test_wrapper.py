"""Tests for kopt.pruning.wrapper: masking, gradients, schedule wiring, distribution."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt.pruning import ConstantSparsity
from kopt.pruning import PolynomialDecay
from kopt.pruning import PruneLowMagnitude
from kopt.testing import run_layer_test
from kopt.testing import run_model_saving_test
from kopt.testing import run_serialization_test
from tflite_export.cloning import copy_layer


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _started(wrapper, *inputs):
    wrapper(*inputs)
    wrapper.start_schedule()
    return wrapper


def test_layer_test_dense_and_conv():
    data = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    kwargs = {"pruning_schedule": PolynomialDecay(0.0, 0.5, 0, 10), "block_size": (1, 2), "block_pooling_type": "MAX"}
    run_layer_test(
        lambda **kw: PruneLowMagnitude(keras.layers.Dense(4), **kw),
        kwargs,
        data,
        expected_output_shape=(4, 4),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=3,
        # Training needs UpdatePruningStep, which the harness does not pass;
        # training is tested below.
        run_training_step=False,
    )
    images = np.random.default_rng(1).normal(size=(2, 6, 6, 3)).astype("float32")
    run_layer_test(
        lambda **kw: PruneLowMagnitude(keras.layers.Conv2D(4, 3), **kw),
        {"sparsity_m_by_n": (2, 4)},
        images,
        expected_output_shape=(2, 4, 4, 4),
        run_training_step=False,
    )


def test_serialization_keeps_every_argument():
    wrapper = PruneLowMagnitude(
        keras.layers.Dense(3),
        pruning_schedule=ConstantSparsity(0.3, 2, frequency=7),
        block_size=(2, 2),
        block_pooling_type="AVG",
        name="pruned",
    )
    restored = run_serialization_test(wrapper, init_kwargs={"block_size": (2, 2), "block_pooling_type": "AVG"})
    assert restored.pruning_schedule.get_config() == wrapper.pruning_schedule.get_config()
    assert restored.name == "pruned" and isinstance(restored.layer, keras.layers.Dense)


def test_forward_pass_uses_masked_weights_and_gradients_skip_pruned_entries():
    wrapper = PruneLowMagnitude(keras.layers.Dense(3, use_bias=False))
    x = np.random.default_rng(2).normal(size=(5, 4)).astype("float32")
    wrapper(x)
    mask = (np.arange(12).reshape(4, 3) % 2).astype("float32")
    wrapper.masks[0].assign(mask)
    kernel = _numpy(wrapper.layer.kernel.value)
    np.testing.assert_allclose(_numpy(wrapper(x)), x @ (kernel * mask), rtol=1e-5)
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(wrapper(x) ** 2)
    gradient = _numpy(tape.gradient(loss, wrapper.layer.kernel.value))
    assert np.all(gradient[mask == 0] == 0) and np.any(gradient[mask == 1] != 0)
    # The kernel variable keeps its values until masks are baked in.
    np.testing.assert_array_equal(_numpy(wrapper.layer.kernel.value), kernel)
    wrapper.apply_masks()
    np.testing.assert_array_equal(_numpy(wrapper.layer.kernel.value), kernel * mask)


def test_training_call_updates_masks_only_on_schedule_turns():
    wrapper = PruneLowMagnitude(keras.layers.Dense(10), pruning_schedule=PolynomialDecay(0.2, 0.6, 1, 3, frequency=2))
    x = np.ones((1, 10), "float32")
    with pytest.raises(RuntimeError, match="UpdatePruningStep"):
        wrapper(x, training=True)
    _started(wrapper, x)
    zeros = []
    for _ in range(5):
        wrapper(x, training=True)
        zeros.append(int((_numpy(wrapper.masks[0].value) == 0).sum()))
    # Steps 0..4: pruning turns at 1 (20%), 3 (end_step, 60%).
    assert zeros == [0, 20, 20, 60, 60]
    assert int(_numpy(wrapper.pruning_step.value)) == 5
    assert float(_numpy(wrapper.thresholds[0].value)) > 0
    wrapper(x, training=False)
    assert int(_numpy(wrapper.pruning_step.value)) == 5  # inference does not count


def test_block_and_m_by_n_masks_in_the_wrapper():
    x = np.random.default_rng(3).normal(size=(2, 16)).astype("float32")
    block = _started(PruneLowMagnitude(keras.layers.Dense(8), ConstantSparsity(0.5, 0), block_size=(4, 2)), x)
    block(x, training=True)
    tiles = _numpy(block.masks[0].value).reshape(4, 4, 4, 2)
    assert np.all(tiles.min(axis=(1, 3)) == tiles.max(axis=(1, 3)))
    assert int((tiles.max(axis=(1, 3)) == 0).sum()) == 8
    two_four = _started(PruneLowMagnitude(keras.layers.Dense(8), sparsity_m_by_n=(2, 4)), x)
    two_four(x, training=True)
    # Dense kernel (in=16, out=8): groups of 4 along the input axis.
    groups = _numpy(two_four.masks[0].value).T.reshape(-1, 4)
    assert np.all((groups == 0).sum(axis=1) == 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"block_size": (0, 2)}, "block_size=(0, 2)"),
        ({"block_size": 4}, "block_size=4"),
        ({"block_pooling_type": "avg"}, "block_pooling_type='avg'"),
        ({"sparsity_m_by_n": (4, 2)}, "sparsity_m_by_n=(4, 2)"),
        ({"sparsity_m_by_n": (2, 4), "block_size": (1, 4)}, "block_size=(1, 4)"),
        ({"pruning_schedule": "cosine"}, "identifier='cosine'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PruneLowMagnitude(keras.layers.Dense(2), **kwargs)


def test_refuses_unsupported_wrapped_and_model_layers_and_unfit_shapes():
    with pytest.raises(ValueError, match=r"'norm' of class LayerNormalization.*PrunableLayer"):
        PruneLowMagnitude(keras.layers.LayerNormalization(name="norm"))
    with pytest.raises(ValueError, match="already wrapped"):
        PruneLowMagnitude(PruneLowMagnitude(keras.layers.Dense(2)))
    with pytest.raises(ValueError, match="not models"):
        PruneLowMagnitude(keras.Sequential([keras.layers.Dense(2)]))
    conv = PruneLowMagnitude(keras.layers.Conv2D(4, 3, name="conv3x3"), block_size=(1, 4))
    with pytest.raises(ValueError, match="'conv3x3'.*Block sparsity"):
        conv(np.ones((1, 5, 5, 2), "float32"))


def test_multi_input_layer_builds_masks_and_saves():
    attention = PruneLowMagnitude(keras.layers.MultiHeadAttention(2, 4))
    query = np.random.default_rng(4).normal(size=(2, 3, 8)).astype("float32")
    value = np.random.default_rng(5).normal(size=(2, 5, 8)).astype("float32")
    assert attention(query, value).shape == (2, 3, 8)
    assert [m.name for m in attention.masks] == [
        "query_kernel_mask",
        "key_kernel_mask",
        "value_kernel_mask",
        "attention_output_kernel_mask",
    ]
    rng = np.random.default_rng(8)
    for mask in attention.masks:
        mask.assign((rng.random(mask.shape) > 0.5).astype("float32"))
    reference = copy_layer(attention.layer, weights=attention.masked_weights())
    np.testing.assert_allclose(_numpy(attention(query, value)), _numpy(reference(query, value)), rtol=1e-5, atol=1e-5)
    q, v = keras.Input((3, 8)), keras.Input((5, 8))
    model = keras.Model([q, v], PruneLowMagnitude(keras.layers.MultiHeadAttention(2, 4))(q, v))
    run_model_saving_test(model, [query, value])


def test_inner_state_updates_and_losses_reach_the_model():
    x = np.random.default_rng(6).normal(size=(4, 5, 3)).astype("float32")
    lstm = _started(PruneLowMagnitude(keras.layers.LSTM(6, dropout=0.5), ConstantSparsity(0.5, 100)), x)
    # Dropout draws from a seed variable inside the stateless scope; its update
    # must be kept, or every step would drop the same units.
    assert not np.allclose(_numpy(lstm(x, training=True)), _numpy(lstm(x, training=True)))
    dense = PruneLowMagnitude(keras.layers.Dense(2, activity_regularizer="l2"))
    dense(np.ones((2, 3), "float32"))
    assert len(dense.losses) == 1


def test_mixed_precision_computes_in_the_policy_dtype():
    wrapper = PruneLowMagnitude(keras.layers.Dense(4, dtype="mixed_bfloat16"))
    x = np.ones((2, 3), "float32")
    output = _started(wrapper, x)(x, training=True)
    assert keras.backend.standardize_dtype(output.dtype) == "bfloat16"
    assert wrapper.masks[0].dtype == "float32" and wrapper.dtype_policy.name == "mixed_bfloat16"


def test_mask_propagates_through_the_wrapper():
    tokens = np.array([[3, 4, 0, 0]])
    embedding = PruneLowMagnitude(keras.layers.Embedding(10, 4, mask_zero=True))
    assert _numpy(embedding.compute_mask(tokens)).tolist() == [[True, True, False, False]]
    inputs = keras.Input((None,), dtype="int32")
    outputs = PruneLowMagnitude(keras.layers.LSTM(3))(embedding(inputs))
    model = keras.Model(inputs, outputs)
    # The padded steps must be skipped: same output with or without them.
    np.testing.assert_allclose(_numpy(model(tokens)), _numpy(model(tokens[:, :2])), rtol=1e-5)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: keras.layers.Dense(4), (2, 6)),
        (lambda: keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 4)), (2, 3, 6)),
        (lambda: keras.layers.Conv1D(4, 3), (2, 7, 3)),
        (lambda: keras.layers.Conv2D(4, 3), (2, 6, 6, 3)),
        (lambda: keras.layers.Conv3D(2, 2), (1, 4, 4, 4, 2)),
        (lambda: keras.layers.Conv1DTranspose(4, 3), (2, 5, 3)),
        (lambda: keras.layers.Conv2DTranspose(4, 3, strides=2), (2, 4, 4, 3)),
        (lambda: keras.layers.DepthwiseConv2D(3, depth_multiplier=2), (2, 6, 6, 3)),
        (lambda: keras.layers.SeparableConv2D(4, 3), (2, 6, 6, 3)),
        (lambda: keras.layers.Embedding(10, 4), None),
        (lambda: keras.layers.LSTM(4, return_sequences=True), (2, 5, 3)),
        (lambda: keras.layers.GRU(4), (2, 5, 3)),
        (lambda: keras.layers.SimpleRNN(4), (2, 5, 3)),
        (lambda: keras.layers.ConvLSTM1D(3, 3, padding="same"), (2, 4, 6, 2)),
        (lambda: keras.layers.ConvLSTM2D(3, 3), (2, 3, 6, 6, 2)),
    ],
)
def test_every_built_in_layer_computes_with_its_masked_weights(make, shape):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 10, (2, 5)) if shape is None else rng.normal(size=shape).astype("float32")
    wrapper = PruneLowMagnitude(make())
    wrapper(x)
    for mask in wrapper.masks:
        mask.assign((rng.random(mask.shape) > 0.5).astype("float32"))
    reference = copy_layer(wrapper.layer, weights=wrapper.masked_weights())
    np.testing.assert_allclose(_numpy(wrapper(x)), _numpy(reference(x)), rtol=1e-5, atol=1e-5)
    assert not np.allclose(_numpy(wrapper(x)), _numpy(wrapper.layer(x)), atol=1e-4)


_DISTRIBUTED_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from kopt import pruning

    def train(strategy):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            inputs = keras.Input((6, 6, 2))
            x = keras.layers.Flatten()(keras.layers.Conv2D(6, 3)(inputs))
            model = keras.Model(inputs, keras.layers.Dense(4)(x))
            schedule = pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=9, frequency=2)
            model = pruning.prune_low_magnitude(model, pruning_schedule=schedule)
            model.compile(keras.optimizers.SGD(0.05), "mse")
        rng = np.random.default_rng(0)
        x, y = rng.random((96, 6, 6, 2), dtype="float32"), rng.random((96, 4), dtype="float32")
        model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[pruning.UpdatePruningStep()])
        wrappers = [layer for layer in model.layers if isinstance(layer, pruning.PruneLowMagnitude)]
        masks = [keras.ops.convert_to_numpy(m.value) for w in wrappers for m in w.masks]
        steps = [int(keras.ops.convert_to_numpy(w.pruning_step.value)) for w in wrappers]
        return pruning.strip_pruning(model).get_weights(), masks, steps

    single = train(tf.distribute.OneDeviceStrategy("/cpu:0"))
    mirrored = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    assert single[2] == mirrored[2] == [12, 12], (single[2], mirrored[2])
    for a, b in zip(single[1], mirrored[1]):
        assert np.array_equal(a, b)
        assert abs((a == 0).mean() - 0.8) < 0.01
    for a, b in zip(single[0], mirrored[0]):
        np.testing.assert_allclose(a, b, atol=1e-5)
        assert np.array_equal(a == 0, b == 0) or a.ndim == 1
    print("DISTRIBUTED_OK")
    """
)


@pytest.mark.slow
@pytest.mark.distributed
def test_mirrored_strategy_matches_single_device():
    # A subprocess: logical devices must be set before TF initializes them, and
    # this process already has.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", _DISTRIBUTED_SCRIPT], capture_output=True, text=True, timeout=300, env=env
    )
    assert "DISTRIBUTED_OK" in result.stdout, result.stdout[-3000:] + result.stderr[-5000:]


def test_random_criterion_is_serialized_and_saved(tmp_path):
    wrapper = PruneLowMagnitude(keras.layers.Dense(3), pruning_schedule=ConstantSparsity(0.5, 0), criterion="random")
    restored = run_serialization_test(wrapper, init_kwargs={"criterion": "random"})
    assert restored.criterion == "random"
    model = keras.Sequential([keras.Input((6,)), wrapper])
    loaded_path = str(tmp_path / "m.keras")
    model.save(loaded_path)
    assert keras.models.load_model(loaded_path).layers[0].criterion == "random"
