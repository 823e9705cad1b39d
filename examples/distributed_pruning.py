"""Prune a model with your own training loop, on one device or many, resumable after a crash.

The strategy comes from ``--strategy`` (kopt.distribute's flags). The model is
built and compiled in its scope and trained with ``kopt.distribute.fit``, which
works under every strategy, multi-worker included, and takes the usual
callbacks. ``--backup_dir`` backs training up every ``--backup_steps`` steps;
rerun the same command after a crash and it resumes at the last backup.

    python examples/distributed_pruning.py --sparsity=0.8 --backup_dir=/tmp/backup

Two workers on one machine (each in its own terminal; ports of your choice)::

    TF_CONFIG='{"cluster": {"worker": ["localhost:12345", "localhost:12346"]}, "task": {"type": "worker", "index": 0}}' \\
        python examples/distributed_pruning.py --strategy=multi_worker --backup_dir=/tmp/backup
    TF_CONFIG='{"cluster": {"worker": ["localhost:12345", "localhost:12346"]}, "task": {"type": "worker", "index": 1}}' \\
        python examples/distributed_pruning.py --strategy=multi_worker --backup_dir=/tmp/backup

The training flags (--optimizer, --lr_schedule, --warmup_epochs, ...) are
kopt.training's, the same as kopt-optimize's.

Expected on the default digits data (10 epochs, seed 0, 2 CPU cores, one worker,
about 30 s): kernels at 0.80 sparsity and test accuracy about 0.9.
"""

import logging

import keras
import numpy as np
from absl import app
from absl import flags

from kopt import distribute
from kopt import pruning
from kopt import training
from kopt.data import load_dataset
from kopt.models import small_cnn

distribute.define_flags()
training.define_flags()
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Training epochs.", lower_bound=1)
_SPARSITY = flags.DEFINE_float("sparsity", 0.8, "Final sparsity of every kernel.", lower_bound=0.0, upper_bound=0.99)
_BACKUP_DIR = flags.DEFINE_string("backup_dir", None, "Back training up here and resume from it after a crash.")
_BACKUP_STEPS = flags.DEFINE_integer("backup_steps", 20, "Steps between backups.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0)
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Peak learning rate.")


def main(argv):
    del argv
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # one line per checkpoint shard otherwise
    strategy = distribute.strategy_from_flags()  # first: multi-worker must precede other TensorFlow work
    config = training.config_from_flags(epochs=_EPOCHS.value, learning_rate=_LEARNING_RATE.value)
    training.make_reproducible(_SEED.value, deterministic=flags.FLAGS.deterministic)
    # The batch size is global: the strategy splits each batch over replicas.
    train, test, info = load_dataset("digits", batch_size=64, seed=_SEED.value)
    validation = None
    if config.needs_validation:  # plateau and early stopping read a validation loss, never the test one
        train, validation = training.split_validation(train, 0.1, batch_size=64, seed=_SEED.value)
    steps = int(train.cardinality()) * _EPOCHS.value
    schedule = pruning.schedules.PolynomialDecay(0.0, _SPARSITY.value, 0, int(steps * 0.7), frequency=10)
    with strategy.scope(), training.precision_policy(flags.FLAGS.mixed_precision):
        model = pruning.prune_low_magnitude(small_cnn(info.input_shape, info.num_classes), pruning_schedule=schedule)
        optimizer, schedule_callbacks = training.training_objects(config, steps_per_epoch=int(train.cardinality()))
        model.compile(
            optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
        )
    callbacks = [pruning.UpdatePruningStep(), *schedule_callbacks]
    if _BACKUP_DIR.value:
        callbacks.append(distribute.BackupAndRestore(_BACKUP_DIR.value, save_freq=_BACKUP_STEPS.value))
    distribute.fit(model, train, epochs=config.epochs, callbacks=callbacks, validation_data=validation, verbose=2)
    stripped = training.to_float32(pruning.strip_pruning(model))
    kernels = [w for w in stripped.weights if w.name == "kernel"]
    sparsity = float(np.mean([np.mean(keras.ops.convert_to_numpy(k) == 0) for k in kernels]))
    images, labels = zip(*[(x, y) for x, y in test])
    predictions = np.argmax(stripped.predict(np.concatenate(images), verbose=0), axis=-1)
    accuracy = float(np.mean(predictions == np.concatenate(labels)))
    print(f"strategy {flags.FLAGS.strategy}: sparsity {sparsity:.2f}, test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    app.run(main)
