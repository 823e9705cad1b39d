"""train_classifier: the config's optimizer, schedule and callbacks reach model.fit."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt.pipeline.classifier_training import train_classifier
from kopt.training import TrainingConfig
from kopt.training import WarmupSchedule


def _data(count=32):
    rng = np.random.default_rng(0)
    images = rng.random((count, 4, 4, 1), dtype="float32")
    labels = (images.mean(axis=(1, 2, 3)) > 0.5).astype("int32")
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)


def _model():
    return keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])


@pytest.mark.parametrize(
    "optimizer, cls",
    [("momentum", keras.optimizers.SGD), ("adamw", keras.optimizers.AdamW), ("rmsprop", keras.optimizers.RMSprop)],
)
def test_config_reaches_the_compiled_optimizer(optimizer, cls):
    model = _model()
    config = TrainingConfig(epochs=2, learning_rate=0.01, optimizer=optimizer, lr_schedule="cosine", warmup_epochs=1)
    history = train_classifier(model, _data(), config=config, verbose=0)
    assert type(model.optimizer) is cls and len(history.history["loss"]) == 2
    assert isinstance(model.optimizer._learning_rate, WarmupSchedule)
    assert model.optimizer.iterations.numpy() == 8


def test_old_signature_still_trains_adam_at_a_constant_rate():
    model = _model()
    train_classifier(model, _data(), epochs=1, learning_rate=0.02, verbose=0)
    assert type(model.optimizer) is keras.optimizers.Adam
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)


def test_plateau_and_early_stopping_need_validation_and_use_it():
    config = TrainingConfig(epochs=2, learning_rate=0.01, lr_schedule="plateau", early_stopping_patience=3)
    with pytest.raises(ValueError, match="pass `validation`"):
        train_classifier(_model(), _data(), config=config, verbose=0)
    history = train_classifier(_model(), _data(), config=config, validation=_data(8), verbose=0)
    assert "val_loss" in history.history and "learning_rate" in history.history


def test_a_diverging_run_stops_at_the_first_nan_and_says_so():
    from kopt.errors import TrainingError

    rng = np.random.default_rng(0)
    images = rng.random((64, 4, 4, 1), dtype="float32")
    images[9] = np.nan  # bypasses load_dataset's checks, as a user's own pipeline could
    labels = (np.arange(64) % 2).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    model = _model()
    with pytest.raises(TrainingError, match=r"diverged: .*kernel.* hold NaN or infinite values") as caught:
        train_classifier(model, data, config=TrainingConfig(epochs=50, learning_rate=0.01), verbose=0)
    assert "learning rate 0.01 (adam, constant)" in str(caught.value)
    assert model.optimizer.iterations.numpy() <= 8  # TerminateOnNaN stopped within the first epoch


def test_a_healthy_run_passes_the_finiteness_check():
    history = train_classifier(_model(), _data(), config=TrainingConfig(epochs=1, learning_rate=0.01), verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def _batch_norm_model():
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(3, 2, name="conv")(inputs))
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))


@pytest.mark.parametrize("batches", [0, 2, 50])
def test_training_ends_with_batch_norm_statistics_of_the_trained_weights(batches):
    keras.utils.set_random_seed(0)
    model = _batch_norm_model()
    data = _data()  # 4 batches of 8, in a fixed order
    train_classifier(model, data, config=TrainingConfig(epochs=1, learning_rate=0.05, batch_norm_batches=batches))
    features = keras.Model(model.inputs, model.get_layer("conv").output)
    per_batch = [keras.ops.convert_to_numpy(features(x)) for x, _ in data.take(max(batches, 1))]
    means = np.mean([f.mean(axis=(0, 1, 2)) for f in per_batch], axis=0)
    variances = np.mean([f.var(axis=(0, 1, 2)) for f in per_batch], axis=0)
    moving = [
        keras.ops.convert_to_numpy(w)
        for w in (model.get_layer("bn").moving_mean, model.get_layer("bn").moving_variance)
    ]
    if batches:  # the average over the first batches of the weights that trained (all 4 when asked for 50)
        np.testing.assert_allclose(moving, [means, variances], rtol=1e-4, atol=1e-6)
    else:  # four updates at momentum 0.99 from mean 0, variance 1: far from the batches'
        assert np.all(moving[1] > 0.9)
