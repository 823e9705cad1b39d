"""Tests for kopt.pruning.callbacks: fit callbacks, custom loops, summaries."""

import glob

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt.pruning import PolynomialDecay
from kopt.pruning import PruningStep
from kopt.pruning import PruningSummaries
from kopt.pruning import UpdatePruningStep
from kopt.pruning import prune_low_magnitude
from kopt.pruning import strip_pruning
from kopt.pruning.callbacks import collect_prunable_layers
from kopt.testing import run_serialization_test

SCHEDULE = PolynomialDecay(0.0, 0.75, begin_step=0, end_step=6, frequency=2)


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((10,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    return prune_low_magnitude(
        keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden)), pruning_schedule=SCHEDULE
    )


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 10)).astype("float32"), rng.normal(size=(32, 2)).astype("float32")


def _fit(model, run_eagerly, callbacks, epochs=1):
    model.compile(keras.optimizers.SGD(0.05), "mse", run_eagerly=run_eagerly)
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)
    return model


def _steps(model):
    return [int(keras.ops.convert_to_numpy(w.pruning_step.value)) for w in collect_prunable_layers(model)]


@pytest.mark.parametrize("run_eagerly", [False, True])
def test_fit_without_the_callback_raises_a_clear_error(run_eagerly):
    with pytest.raises(RuntimeError, match="UpdatePruningStep"):
        _fit(_model(), run_eagerly, [])


def test_callback_needs_a_pruned_model():
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="has no PruneLowMagnitude layers"):
        _fit(plain, False, [UpdatePruningStep()])
    with pytest.raises(ValueError, match="has no PruneLowMagnitude layers"):
        PruningStep(plain)


def test_graph_and_eager_training_agree():
    graph = _fit(_model(), False, [UpdatePruningStep()])
    eager = _fit(_model(), True, [UpdatePruningStep()])
    assert _steps(graph) == _steps(eager) == [8, 8]
    for a, b in zip(strip_pruning(graph).get_weights(), strip_pruning(eager).get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        assert np.array_equal(a == 0, b == 0)
    # Masks are baked into the kernels at the end of fit.
    for wrapper in collect_prunable_layers(graph):
        kernel = keras.ops.convert_to_numpy(wrapper.layer.kernel.value)
        assert (kernel == 0).mean() == pytest.approx(0.75, abs=0.07)


def test_steps_per_execution_counts_every_batch():
    model = _model()
    model.compile(keras.optimizers.SGD(0.05), "mse", steps_per_execution=4)
    model.fit(*_data(), batch_size=4, verbose=0, callbacks=[UpdatePruningStep()])
    assert _steps(model) == [8, 8]


def test_custom_training_loop_with_pruning_step():
    model = _model()
    optimizer = keras.optimizers.SGD(0.05)
    x, y = _data()

    @tf.function
    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = keras.ops.mean((model(inputs, training=True) - targets) ** 2)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))

    pruning = PruningStep(model)
    for start in range(0, 32, 4):
        train_step(x[start : start + 4], y[start : start + 4])
    pruning.finish()
    assert pruning.step == 8
    reference = _fit(_model(), False, [UpdatePruningStep()])
    for a, b in zip(strip_pruning(model).get_weights(), strip_pruning(reference).get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_tfmot_custom_loop_recipe_still_works():
    model = _model()
    callback = UpdatePruningStep()
    callback.set_model(model)
    callback.on_train_begin()
    x, y = _data()
    for start in range(0, 32, 4):
        callback.on_train_batch_begin(batch=-1)
        model(x[start : start + 4], training=True)
    callback.on_epoch_end(batch=-1)
    assert _steps(model) == [8, 8]
    kernel = keras.ops.convert_to_numpy(collect_prunable_layers(model)[0].layer.kernel.value)
    assert (kernel == 0).mean() == pytest.approx(0.75, abs=0.02)


def test_pruning_summaries_write_sparsity_and_thresholds(tmp_path):
    model = _model()
    _fit(model, False, [UpdatePruningStep(), PruningSummaries(str(tmp_path), update_freq=4)], epochs=2)
    tags = {}
    for path in glob.glob(str(tmp_path / "metrics" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    assert set(tags) == {
        f"prune_low_magnitude_{name}/{tag}"
        for name in ("hidden", "head")
        for tag in ("target_sparsity", "kernel_mask/sparsity", "kernel_threshold/threshold")
    }
    sparsity = tags["prune_low_magnitude_head/kernel_mask/sparsity"]
    assert [step for step, _ in sparsity] == [4, 8, 12, 16]
    assert sparsity[-1][1] == pytest.approx(0.75, abs=0.07)
    assert tags["prune_low_magnitude_head/kernel_threshold/threshold"][-1][1] > 0
    assert tags["prune_low_magnitude_head/target_sparsity"][-1][1] == pytest.approx(0.75)


def test_pruning_summaries_validate_arguments():
    with pytest.raises(ValueError, match="log_dir=''"):
        PruningSummaries("")
    with pytest.raises(ValueError, match="update_freq=0"):
        PruningSummaries("/tmp/x", update_freq=0)


def test_callbacks_serialize():
    run_serialization_test(UpdatePruningStep())
    run_serialization_test(
        PruningSummaries("logs", update_freq="batch"), init_kwargs={"log_dir": "logs", "update_freq": "batch"}
    )


def test_subclassed_model_that_drops_training_is_caught():
    class NoTrainingArgument(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = prune_low_magnitude(keras.layers.Dense(2))

        def call(self, inputs):  # Keras then calls its layers with training=None
            return self.dense(inputs)

    class WithTrainingArgument(NoTrainingArgument):
        def call(self, inputs, training=None):
            return self.dense(inputs, training=training)

    with pytest.raises(RuntimeError, match="must accept a `training` argument"):
        _fit(NoTrainingArgument(), False, [UpdatePruningStep()])
    model = _fit(WithTrainingArgument(), False, [UpdatePruningStep()])
    assert _steps(model) == [8]


def test_unbuilt_sequential_model_starts_its_schedule_when_built():
    model = prune_low_magnitude(
        keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(2)]), pruning_schedule=SCHEDULE
    )
    _fit(model, False, [UpdatePruningStep()])
    assert _steps(model) == [8, 8]
