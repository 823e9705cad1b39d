"""A TrainingConfig becomes the optimizer, schedule and callbacks it names."""

import keras
import numpy as np

from kopt.training import TrainingConfig
from kopt.training import WarmupSchedule
from kopt.training import training_objects


def test_optimizer_schedule_and_early_stopping_together():
    config = TrainingConfig(
        epochs=5,
        learning_rate=0.01,
        optimizer="nesterov",
        lr_schedule="exponential",
        warmup_epochs=1,
        early_stopping_patience=2,
    )
    optimizer, callbacks = training_objects(config, steps_per_epoch=3, early_stopping_from_epoch=2)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.nesterov
    assert isinstance(optimizer._learning_rate, WarmupSchedule)
    (stopper,) = callbacks
    assert isinstance(stopper, keras.callbacks.EarlyStopping)
    assert stopper.patience == 2 and stopper.start_from_epoch == 2 and stopper.restore_best_weights


def test_early_stopping_stops_when_validation_stalls():
    optimizer, callbacks = training_objects(
        TrainingConfig(epochs=20, learning_rate=0.1, optimizer="sgd", early_stopping_patience=1), steps_per_epoch=1
    )
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer, "mse")
    x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
    history = model.fit(x, y, epochs=20, validation_data=(x, -100 * y), callbacks=callbacks, verbose=0)
    assert len(history.history["loss"]) < 20
