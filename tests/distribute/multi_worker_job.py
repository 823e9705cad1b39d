"""One worker of the multi-worker tests: trains pruned, QAT and distilled models with kopt.distribute.fit.

Run by tests/distribute/test_multi_worker.py with TF_CONFIG set, as
``python multi_worker_job.py OUT_DIR BACKUP_DIR STEP_DELAY_S``. Writes
``OUT_DIR/worker<i>.npz`` with every variable of both models and the
position training resumed from, and ``OUT_DIR/worker<i>.progress`` with the
last finished global step (for the fault test to time its kill).
"""

import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

# The strategy must exist before any other TensorFlow work.
STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402

from kopt import pruning  # noqa: E402
from kopt import quantization  # noqa: E402
from kopt.distillation import Distiller  # noqa: E402
from kopt.distribute import BackupAndRestore  # noqa: E402
from kopt.distribute import fit  # noqa: E402
from kopt.distribute import worker_info  # noqa: E402

EPOCHS, STEPS, GLOBAL_BATCH = 3, 6, 16
TARGET_SPARSITY = 0.75


class Progress(keras.callbacks.Callback):
    """Writes the finished step count after each step, then waits ``delay`` seconds."""

    def __init__(self, path, delay):
        super().__init__()
        self.path, self.delay, self.done = path, delay, 0

    def on_train_batch_end(self, batch, logs=None):
        self.done = int(self.model.optimizer.iterations.numpy())
        with open(self.path + ".tmp", "w") as f:
            f.write(str(self.done))
        os.replace(self.path + ".tmp", self.path)
        time.sleep(self.delay)


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EPOCHS * STEPS * GLOBAL_BATCH // EPOCHS, 6, 6, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)


def build():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def main(out_dir, backup_dir, delay):
    index = worker_info().index
    schedule = pruning.schedules.PolynomialDecay(0.0, TARGET_SPARSITY, 0, EPOCHS * STEPS - 4, frequency=2)
    with STRATEGY.scope():
        pruned = pruning.prune_low_magnitude(build(), pruning_schedule=schedule)
        pruned.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    backup = BackupAndRestore(backup_dir, save_freq=2)
    progress = Progress(os.path.join(out_dir, f"worker{index}.progress"), delay)
    fit(pruned, data(), epochs=EPOCHS, callbacks=[pruning.UpdatePruningStep(), backup, progress], verbose=0)
    resumed = backup.resume_point()
    with STRATEGY.scope():
        qat = quantization.quantize_model(build())
        qat.compile(keras.optimizers.Adam(0.001), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    fit(qat, data(), epochs=1, verbose=0)
    with STRATEGY.scope():
        keras.utils.set_random_seed(4)
        inputs = keras.Input((6, 6, 1))
        student = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
        distiller = Distiller(student, build(), alpha=0.3, temperature=2.0)
        distiller.compile(keras.optimizers.Adam(0.01))
    distilled = fit(distiller, data(), epochs=1, verbose=0).history
    arrays = {f"pruned/{w.path}": keras.ops.convert_to_numpy(w.value) for w in pruned.weights}
    arrays.update({f"qat/{w.path}": keras.ops.convert_to_numpy(w.value) for w in qat.weights})
    arrays.update({f"distilled/{w.path}": keras.ops.convert_to_numpy(w.value) for w in student.weights})
    arrays.update({f"distill_log/{k}": np.array(v) for k, v in distilled.items()})
    arrays["resumed_from"] = np.array(resumed if resumed else (-1, -1))
    arrays["iterations"] = np.array(int(pruned.optimizer.iterations.numpy()))
    np.savez(os.path.join(out_dir, f"worker{index}.npz"), **arrays)
    print("WORKER_DONE", json.dumps({"index": index, "resumed_from": list(resumed) if resumed else None}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
