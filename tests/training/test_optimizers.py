"""Each optimizer name is the Keras built-in it names, with its momentum and decay."""

import keras
import pytest

from kopt import ConfigError
from kopt.training import get_optimizer


@pytest.mark.parametrize(
    "name, cls, momentum, nesterov",
    [
        ("sgd", keras.optimizers.SGD, 0.0, False),
        ("momentum", keras.optimizers.SGD, 0.9, False),
        ("nesterov", keras.optimizers.SGD, 0.9, True),
        ("adam", keras.optimizers.Adam, None, None),
        ("adamw", keras.optimizers.AdamW, None, None),
        ("rmsprop", keras.optimizers.RMSprop, 0.0, None),
    ],
)
def test_names_map_to_keras_optimizers(name, cls, momentum, nesterov):
    optimizer = get_optimizer(name, 0.05)
    assert type(optimizer) is cls
    assert float(optimizer.learning_rate) == pytest.approx(0.05)
    if momentum is not None:
        assert float(optimizer.momentum) == momentum
    if nesterov is not None:
        assert optimizer.nesterov is nesterov


def test_momentum_and_weight_decay_reach_the_optimizer():
    optimizer = get_optimizer("nesterov", 0.1, momentum=0.7, weight_decay=1e-3)
    assert float(optimizer.momentum) == pytest.approx(0.7) and optimizer.weight_decay == pytest.approx(1e-3)
    assert get_optimizer("rmsprop", 0.1, momentum=0.5).momentum == pytest.approx(0.5)
    assert get_optimizer("adamw", 0.1).weight_decay == pytest.approx(0.004)  # Keras' own default


def test_schedule_is_passed_through():
    optimizer = get_optimizer("adam", keras.optimizers.schedules.CosineDecay(0.1, 10))
    assert float(optimizer.learning_rate) == pytest.approx(0.1)
    optimizer.iterations.assign(5)
    assert float(optimizer.learning_rate) == pytest.approx(0.05)


def test_bad_names_and_momentum_are_config_errors():
    with pytest.raises(ConfigError, match="optimizer=lion"):
        get_optimizer("lion", 0.1)
    with pytest.raises(ConfigError, match="momentum=0.5: only"):
        get_optimizer("adamw", 0.1, momentum=0.5)
