"""Schedules by name are Keras' own; the warm-up is exact and serializable."""

import keras
import numpy as np
import pytest

from kopt.testing import run_serialization_test
from kopt.training import TrainingConfig
from kopt.training import WarmupSchedule
from kopt.training import learning_rate_schedule


def _values(schedule, steps):
    return [float(schedule(step)) for step in steps]


def test_constant_is_the_rate_itself():
    rate, callbacks = learning_rate_schedule(TrainingConfig(epochs=2, learning_rate=0.1), steps_per_epoch=5)
    assert rate == 0.1 and callbacks == []


def test_exponential_ends_at_a_hundredth_and_cosine_at_zero():
    config = TrainingConfig(epochs=4, learning_rate=0.1, lr_schedule="exponential")
    schedule, _ = learning_rate_schedule(config, steps_per_epoch=10)
    assert isinstance(schedule, keras.optimizers.schedules.ExponentialDecay)
    assert _values(schedule, [0, 40]) == pytest.approx([0.1, 0.001])
    schedule, _ = learning_rate_schedule(
        TrainingConfig(epochs=4, learning_rate=0.1, lr_schedule="cosine"), steps_per_epoch=10
    )
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert _values(schedule, [0, 20, 40]) == pytest.approx([0.1, 0.05, 0.0], abs=1e-6)


def test_warmup_rises_linearly_then_runs_the_schedule_over_the_rest():
    config = TrainingConfig(epochs=3, learning_rate=0.1, lr_schedule="cosine", warmup_epochs=1)
    schedule, _ = learning_rate_schedule(config, steps_per_epoch=4)
    assert isinstance(schedule, WarmupSchedule) and schedule.warmup_steps == 4
    values = _values(schedule, [0, 1, 3, 4, 8, 12])
    assert values == pytest.approx([0.025, 0.05, 0.1, 0.1, 0.05, 0.0], abs=1e-6)


def test_warmup_schedule_serializes_with_its_inner_schedule():
    inner = keras.optimizers.schedules.ExponentialDecay(0.2, 10, 0.5)
    restored = run_serialization_test(WarmupSchedule(inner, 3), init_kwargs={"warmup_steps": 3})
    assert _values(restored, [0, 2, 3, 13]) == pytest.approx(_values(WarmupSchedule(inner, 3), [0, 2, 3, 13]))
    run_serialization_test(WarmupSchedule(0.01, 2), init_kwargs={"schedule": 0.01, "warmup_steps": 2})


@pytest.mark.parametrize("kwargs", [{"schedule": 0.0, "warmup_steps": 1}, {"schedule": 0.1, "warmup_steps": 0}])
def test_warmup_schedule_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Received"):
        WarmupSchedule(**kwargs)


def test_plateau_lowers_the_rate_when_validation_loss_stalls():
    config = TrainingConfig(epochs=4, learning_rate=0.1, lr_schedule="plateau", warmup_epochs=1)
    rate, callbacks = learning_rate_schedule(config, steps_per_epoch=2)
    assert rate == 0.1
    plateau = callbacks[-1]
    assert isinstance(plateau, keras.callbacks.ReduceLROnPlateau) and plateau.monitor == "val_loss"
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(rate), "mse")
    x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
    # A validation target the model cannot fit while it fits the training one: val_loss stalls.
    model.fit(x, y, batch_size=2, epochs=4, validation_data=(x, -100 * y), callbacks=callbacks, verbose=0)
    assert float(model.optimizer.learning_rate) < 0.1 * 0.5


def test_plateau_warmup_sets_the_rate_during_the_first_steps():
    config = TrainingConfig(epochs=3, learning_rate=0.1, lr_schedule="plateau", warmup_epochs=1)
    _, callbacks = learning_rate_schedule(config, steps_per_epoch=4)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(self.model.optimizer.learning_rate))

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), batch_size=1, epochs=1, callbacks=[callbacks[0], Record()], verbose=0)
    assert seen == pytest.approx([0.025, 0.05, 0.075, 0.1])
