"""kopt.distribute.BackupAndRestore: a crashed run resumes at its last backup and ends as an unbroken one."""

import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt import pruning
from kopt import quantization
from kopt.distribute import BackupAndRestore
from kopt.distribute import Preempted
from kopt.distribute import fit
from kopt.testing import run_serialization_test

STEPS, EPOCHS = 4, 3


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * 8, 6, 6, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def _pruned_qat_model():
    keras.utils.set_random_seed(5)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Flatten()(keras.layers.Conv2D(3, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    schedule = pruning.schedules.PolynomialDecay(0.0, 0.6, 0, STEPS * EPOCHS - 2, frequency=1)
    model = pruning.prune_low_magnitude(model, pruning_schedule=schedule)
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class _Crash(keras.callbacks.Callback):
    """Raises once the optimizer has taken ``at`` steps, like a killed process."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.at:
            raise KeyboardInterrupt("simulated crash")


def _values(model):
    return {w.path: keras.ops.convert_to_numpy(w.value) for w in model.weights}


def test_resumes_mid_epoch_and_ends_like_an_unbroken_run(tmp_path):
    unbroken = _pruned_qat_model()
    fit(unbroken, _data(), epochs=EPOCHS, callbacks=[pruning.UpdatePruningStep()], verbose=0)

    backup_dir = str(tmp_path / "backup")
    crashed = _pruned_qat_model()
    with pytest.raises(KeyboardInterrupt):
        fit(
            crashed,
            _data(),
            epochs=EPOCHS,
            verbose=0,
            callbacks=[pruning.UpdatePruningStep(), BackupAndRestore(backup_dir, save_freq=2), _Crash(at=7)],
        )
    assert tf.train.latest_checkpoint(backup_dir) is not None

    restarted = _pruned_qat_model()  # a new process would build the model afresh
    backup = BackupAndRestore(backup_dir, save_freq=2)
    seen = []
    record = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: seen.append(batch))
    fit(restarted, _data(), epochs=EPOCHS, callbacks=[pruning.UpdatePruningStep(), backup, record], verbose=0)
    # Crashed after step 7; the last backup, after step 6, is epoch 1, step 2.
    # Step 7 is trained again, everything before it is kept.
    assert backup.resume_point() == (1, 2)
    assert seen == [2, 3] + [0, 1, 2, 3]
    assert int(restarted.optimizer.iterations.numpy()) == STEPS * EPOCHS
    # Layer names differ between models built in one process: compare in order.
    expected, actual = list(_values(unbroken).items()), list(_values(restarted).items())
    assert len(expected) == len(actual) and any("pruning_step" in name for name, _ in actual)
    for (name, value), (_, restored) in zip(expected, actual):
        np.testing.assert_allclose(restored, value, rtol=1e-5, atol=1e-6, err_msg=name)
    kernels = [w for w in pruning.strip_pruning(restarted).weights if w.name == "kernel"]
    assert [round(float(np.mean(k.numpy() == 0)), 2) for k in kernels] == [0.59, 0.6]
    assert not os.path.exists(backup_dir)  # deleted after a finished run


class _Sigterm(keras.callbacks.Callback):
    """Sends this process SIGTERM once the optimizer has taken ``at`` steps, as a cluster manager would."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_train_batch_begin(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.at:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_saves_the_step_and_stops_and_the_rerun_resumes_with_nothing_lost(tmp_path):
    unbroken = _pruned_qat_model()
    fit(unbroken, _data(), epochs=EPOCHS, callbacks=[pruning.UpdatePruningStep()], verbose=0)

    backup_dir = str(tmp_path / "backup")
    preempted = _pruned_qat_model()
    with pytest.raises(Preempted, match="Run the same command again") as caught:
        # save_freq="epoch": the signal itself makes the mid-epoch backup.
        fit(preempted, _data(), epochs=EPOCHS, verbose=0,
            callbacks=[pruning.UpdatePruningStep(), BackupAndRestore(backup_dir), _Sigterm(at=6)])  # fmt: skip
    # The signal came before step 7 (epoch 1, batch 2), which finished and was saved.
    assert (caught.value.epoch, caught.value.step) == (1, 3)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone again

    restarted = _pruned_qat_model()
    backup = BackupAndRestore(backup_dir)
    fit(restarted, _data(), epochs=EPOCHS, callbacks=[pruning.UpdatePruningStep(), backup], verbose=0)
    assert backup.resume_point() == (1, 3)
    assert int(restarted.optimizer.iterations.numpy()) == STEPS * EPOCHS
    for (name, value), (_, restored) in zip(_values(unbroken).items(), _values(restarted).items()):
        np.testing.assert_allclose(restored, value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_quantization_ranges_are_backed_up(tmp_path):
    def model():
        keras.utils.set_random_seed(2)
        inputs = keras.Input((6, 6, 1))
        qat = quantization.quantize_model(keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs))))
        qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return qat

    trained = model()
    fit(trained, _data(), epochs=1, callbacks=[BackupAndRestore(str(tmp_path), delete_checkpoint=False)], verbose=0)
    ranges = [(k, v) for k, v in _values(trained).items() if k.endswith(("_min", "_max"))]
    assert ranges and any(np.any(v != 0) for _, v in ranges)
    restored = model()
    # Nothing is left to train: restoring alone must bring every range back.
    fit(restored, _data(), epochs=1, callbacks=[BackupAndRestore(str(tmp_path))], verbose=0)
    assert int(restored.optimizer.iterations.numpy()) == STEPS
    restored_ranges = [(k, v) for k, v in _values(restored).items() if k.endswith(("_min", "_max"))]
    for (name, value), (_, actual) in zip(ranges, restored_ranges, strict=True):
        np.testing.assert_array_equal(actual, value, err_msg=name)


def test_model_fit_cannot_silently_retrain_restored_epochs(tmp_path):
    model = _pruned_qat_model()
    fit(
        model,
        _data(),
        epochs=1,
        callbacks=[pruning.UpdatePruningStep(), BackupAndRestore(str(tmp_path), delete_checkpoint=False)],
        verbose=0,
    )
    again = _pruned_qat_model()
    with pytest.raises(RuntimeError, match="Train with kopt.distribute.fit"):
        again.fit(
            _data(), epochs=2, verbose=0, callbacks=[pruning.UpdatePruningStep(), BackupAndRestore(str(tmp_path))]
        )


def test_a_backup_of_another_model_is_refused(tmp_path):
    fit(
        _pruned_qat_model(),
        _data(),
        epochs=1,
        verbose=0,
        callbacks=[pruning.UpdatePruningStep(), BackupAndRestore(str(tmp_path), delete_checkpoint=False)],
    )
    other = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    other.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="is not of model .*Received: backup_dir="):
        fit(other, _data(), epochs=1, verbose=0, callbacks=[BackupAndRestore(str(tmp_path))])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backup_dir": ""}, "backup_dir must be a folder path. Received: backup_dir=''"),
        (
            {"backup_dir": "x", "save_freq": 0},
            "save_freq must be 'epoch' or a positive number of steps. Received: save_freq=0",
        ),
        ({"backup_dir": "x", "save_freq": "batch"}, "Received: save_freq='batch'"),
    ],
)
def test_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BackupAndRestore(**kwargs)


def test_serializes():
    run_serialization_test(BackupAndRestore("/tmp/backups", save_freq=10, delete_checkpoint=False))
