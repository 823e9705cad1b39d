"""kopt.distribute.fit: model.fit's results under every strategy, with the same callbacks."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt import pruning
from kopt.distribute import fit
from kopt.pruning.callbacks import collect_prunable_layers


def _data(count=64, batch=16):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(count, 5)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def test_matches_model_fit_step_for_step():
    reference, ours = _model(), _model()
    expected = reference.fit(_data(), epochs=3, shuffle=False, verbose=0).history
    history = fit(ours, _data(), epochs=3, verbose=0).history
    for a, b in zip(reference.weights, ours.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
    assert set(history) == {"loss", "accuracy"}
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-5)
    np.testing.assert_allclose(history["accuracy"], expected["accuracy"], rtol=1e-6)


def test_validation_steps_per_epoch_and_initial_epoch():
    model = _model()
    seen = []
    callback = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: seen.append(batch))
    history = fit(
        model,
        _data().repeat(),
        epochs=3,
        initial_epoch=1,
        steps_per_epoch=2,
        validation_data=_data(),
        callbacks=[callback],
        verbose=0,
    ).history
    assert seen == [0, 1, 0, 1]
    assert int(model.optimizer.iterations.numpy()) == 4
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    expected = model.evaluate(_data(), verbose=0, return_dict=True)
    np.testing.assert_allclose(history["val_loss"][-1], expected["loss"], rtol=1e-5)


def test_stop_training_ends_the_run():
    model = _model()

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    history = fit(model, _data(), epochs=5, callbacks=[Stop()], verbose=0).history
    assert len(history["loss"]) == 1 and int(model.optimizer.iterations.numpy()) == 2


def test_pruning_callbacks_work_as_in_model_fit():
    schedule = pruning.schedules.ConstantSparsity(0.5, begin_step=0, frequency=1)
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8), keras.layers.Dense(2)])
    model = pruning.prune_low_magnitude(base, pruning_schedule=schedule)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    fit(model, _data(), epochs=2, callbacks=[pruning.UpdatePruningStep()], verbose=0)
    for layer in collect_prunable_layers(model):
        assert int(layer.pruning_step.numpy()) == 8
    kernels = [w for w in pruning.strip_pruning(model).weights if w.name == "kernel"]
    assert [float(np.mean(k.numpy() == 0)) for k in kernels] == [0.5, 0.5]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, r"epochs must be an integer >= 1. Received: epochs=0"),
        ({"epochs": 2, "initial_epoch": 2}, r"initial_epoch must be below epochs"),
        ({"steps_per_epoch": 0}, r"steps_per_epoch must be a positive integer. Received: steps_per_epoch=0"),
        ({"validation_data": np.zeros(3)}, r"validation_data must be a batched tf.data.Dataset"),
    ],
)
def test_bad_arguments_are_refused_before_training(kwargs, message):
    model = _model()
    with pytest.raises(ValueError, match=message):
        fit(model, _data(), **kwargs)
    assert not model.optimizer.built


def test_unknown_length_needs_steps_per_epoch_and_uncompiled_models_are_refused():
    with pytest.raises(ValueError, match="needs steps_per_epoch"):
        fit(_model(), _data().repeat(), verbose=0)
    with pytest.raises(ValueError, match="dataset must be a batched tf.data.Dataset"):
        fit(_model(), (np.zeros((4, 5)), np.zeros(4)))
    keras.utils.set_random_seed(0)
    uncompiled = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="is not compiled"):
        fit(uncompiled, _data())


_MIRRORED = textwrap.dedent(
    """
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from kopt import pruning, quantization
    from kopt.distribute import fit, make_strategy

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 6, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32")

    def train(strategy, technique, use_kopt_fit):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            inputs = keras.Input((6, 6, 1))
            h = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
            model = keras.Model(inputs, keras.layers.Dense(2)(h))
            if technique == "prune":
                schedule = pruning.schedules.PolynomialDecay(0.0, 0.5, 0, 6, frequency=2)
                model = pruning.prune_low_magnitude(model, pruning_schedule=schedule)
            else:
                model = quantization.quantize_model(model)
            model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        callbacks = [pruning.UpdatePruningStep()] if technique == "prune" else []
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
        if use_kopt_fit:
            fit(model, data, epochs=2, callbacks=callbacks, verbose=0)
        else:
            model.fit(data, epochs=2, callbacks=callbacks, verbose=0)
        return [np.array(keras.ops.convert_to_numpy(w.value)) for w in model.weights]

    # One MirroredStrategy per process (a second one confuses collective keys).
    mirrored = make_strategy("mirrored")
    assert mirrored.num_replicas_in_sync == 2
    one = make_strategy("one_device")
    # QAT ranges are per-replica statistics averaged over replicas, so only the
    # pruned model (no batch statistics) can match one device exactly.
    for technique in ("prune", "qat"):
        single = train(one, technique, use_kopt_fit=True)
        keras_fit = train(mirrored, technique, use_kopt_fit=False)
        ours = train(mirrored, technique, use_kopt_fit=True)
        for a, b in zip(keras_fit, ours):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        if technique == "prune":
            for a, b in zip(single, ours):
                np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    print("MIRRORED_OK")
    """
)


@pytest.mark.slow
@pytest.mark.distributed
def test_under_mirrored_strategy_matches_model_fit_and_one_device():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True, timeout=300, env=env)
    assert "MIRRORED_OK" in result.stdout, result.stdout[-3000:] + result.stderr[-5000:]
