"""The training flags reach the TrainingConfig, and through it the Keras objects."""

import keras
from absl import flags

from kopt.training import config_from_flags
from kopt.training import define_flags
from kopt.training import training_objects
from kopt.training.flags import FLAG_NAMES


def test_every_flag_is_defined_once_and_reaches_the_config():
    values = flags.FlagValues()
    define_flags(values)
    define_flags(values)  # a second call is harmless
    assert set(FLAG_NAMES) <= set(values)
    values(
        [
            "prog",
            "--optimizer=rmsprop",
            "--momentum=0.3",
            "--weight_decay=0.01",
            "--lr_schedule=plateau",
            "--warmup_epochs=1",
            "--early_stopping_patience=2",
            "--mixed_precision=mixed_bfloat16",
            "--nodeterministic",
        ]
    )
    config = config_from_flags(epochs=4, learning_rate=0.02, flag_values=values)
    assert (config.optimizer, config.momentum, config.weight_decay) == ("rmsprop", 0.3, 0.01)
    assert (config.lr_schedule, config.warmup_epochs, config.early_stopping_patience) == ("plateau", 1, 2)
    assert values.mixed_precision == "mixed_bfloat16" and values.deterministic is False
    optimizer, callbacks = training_objects(config, steps_per_epoch=5)
    assert isinstance(optimizer, keras.optimizers.RMSprop) and float(optimizer.momentum) == 0.3
    assert optimizer.weight_decay == 0.01
    kinds = {type(callback).__name__ for callback in callbacks}
    assert {"ReduceLROnPlateau", "EarlyStopping", "_PlateauWarmup"} == kinds
