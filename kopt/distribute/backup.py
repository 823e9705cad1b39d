"""Fault tolerance: back training up as it runs, resume where it stopped.

A backup is a TensorFlow checkpoint of every model variable (weights, and the
non-trainable state kopt keeps in variables: pruning steps and masks,
quantization ranges, BatchNormalization statistics), the optimizer's state, and
the position in training (epoch and step). A process killed mid-epoch and
started again with the same command restores all of it and
:func:`kopt.distribute.fit` skips exactly the batches already trained, so the run
ends as an uninterrupted one would: same pruning step, same final sparsity.

Checkpoints are written to a new file and only then named the latest, so a
crash while writing leaves the previous backup intact. Under multi-worker
training every worker saves (reading synchronized variables takes all of them);
the chief writes to ``backup_dir``, the others to a local scratch folder they
delete at the end.

While it trains, SIGTERM (preemption) saves a backup at the next step on every
worker and stops training with :class:`kopt.distribute.Preempted`
(:mod:`kopt.distribute.preemption`).
"""

import os
import shutil
import tempfile
from typing import Any

import keras
import tensorflow as tf
from absl import logging

from kopt.distribute.preemption import Preempted
from kopt.distribute.preemption import SigtermWatch
from kopt.distribute.strategies import worker_info

__all__ = ["BackupAndRestore"]

_KEEP = 2


@keras.saving.register_keras_serializable(package="kopt")
class BackupAndRestore(keras.callbacks.Callback):
    """Backs training up to ``backup_dir`` and restores it on the next start.

    Use it with :func:`kopt.distribute.fit`, which resumes at the backed-up
    step. (With ``model.fit``, use ``keras.callbacks.BackupAndRestore``: Keras
    resumes only at epoch starts. Given to ``model.fit``, this callback raises
    instead of silently training the restored epochs again.)

    Args:
        backup_dir: Folder for the backups; created if missing. Give every
            worker of a run the same path on a shared file system.
        save_freq: ``"epoch"`` to back up at each epoch end, or a number of
            training steps between backups (and at each epoch end).
        delete_checkpoint: Delete the backups once training finishes normally.

    Example:

    >>> import tempfile
    >>> backup = BackupAndRestore(tempfile.mkdtemp(), save_freq=100)
    >>> backup.save_freq
    100
    """

    def __init__(self, backup_dir: str | os.PathLike, save_freq: str | int = "epoch", delete_checkpoint: bool = True):
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
            raise ValueError(f"BackupAndRestore: backup_dir must be a folder path. Received: backup_dir={backup_dir!r}")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(
                "BackupAndRestore: save_freq must be 'epoch' or a positive number of steps. "
                f"Received: save_freq={save_freq!r}"
            )
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self._manager = None
        self._restored = None
        self._resume_taken = False

    def get_config(self) -> dict[str, Any]:
        return {"backup_dir": self.backup_dir, "save_freq": self.save_freq, "delete_checkpoint": self.delete_checkpoint}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "BackupAndRestore":
        return cls(**config)

    def resume_point(self) -> tuple[int, int] | None:
        """``(epoch, step)`` to resume at after a restore, else ``None``."""
        self._resume_taken = True
        return self._restored

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        model = self.model
        if model.optimizer is not None and not model.optimizer.built:
            # Slots must exist for the checkpoint to restore them.
            with model.distribute_strategy.scope():
                model.optimizer.build(model.trainable_variables)
        with tf.init_scope():
            self._position = tf.Variable([0, 0], dtype=tf.int64, trainable=False, name="backup_position")
        # Variables listed explicitly, in the model's own order: tracking Keras
        # objects by attribute would miss the ones kopt keeps in dicts and lists
        # (pruning masks, quantization ranges).
        self._checkpoint = tf.train.Checkpoint(
            model_variables=list(model.weights),
            optimizer_variables=list(model.optimizer.variables) if model.optimizer is not None else [],
            position=self._position,
        )
        self._info = worker_info()
        # Outside backup_dir: the chief may delete that while others still save.
        self._scratch = (
            None if self._info.is_chief else tempfile.mkdtemp(prefix=f"kopt-backup-worker{self._info.index}-")
        )
        directory = self.backup_dir if self._info.is_chief else self._scratch
        latest = tf.train.latest_checkpoint(self.backup_dir)
        self._restored = None
        self._resume_taken = False
        if latest is not None:
            self._restore(latest)
            epoch, step = (int(v) for v in self._position.numpy())
            self._restored = (epoch, step)
            logging.info(
                "Resuming %s from its backup in %s: epoch %d, step %d.", model.name, self.backup_dir, epoch, step
            )
        self._manager = tf.train.CheckpointManager(self._checkpoint, directory, max_to_keep=_KEEP)
        self._steps_since_save = 0
        self._epoch = self._restored[0] if self._restored else 0
        self._watch = SigtermWatch()
        self._watch.start()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._restored is not None and not self._resume_taken:
            raise RuntimeError(
                f"BackupAndRestore restored a backup from epoch {self._restored[0]}, step {self._restored[1]} "
                f"in {self.backup_dir!r}, but this training loop cannot resume there. Train with "
                "kopt.distribute.fit, or use keras.callbacks.BackupAndRestore with model.fit."
            )
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._watch.agreed(self.model.distribute_strategy, self._info.num_workers):
            self._save(self._epoch, batch + 1)
            self.stop_watching()
            raise Preempted(self._epoch, batch + 1, self.backup_dir)
        if self.save_freq == "epoch":
            return
        self._steps_since_save += 1
        if self._steps_since_save >= self.save_freq:
            self._save(self._epoch, batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._save(epoch + 1, 0)

    def stop_watching(self) -> None:
        """Gives SIGTERM back its previous handler; :func:`kopt.distribute.fit` calls it however training ends."""
        watch = getattr(self, "_watch", None)
        if watch is not None:
            watch.stop()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.stop_watching()
        if not self._info.is_chief:
            shutil.rmtree(self._scratch, ignore_errors=True)
        elif self.delete_checkpoint:
            shutil.rmtree(self.backup_dir, ignore_errors=True)

    def _restore(self, path):
        saved = dict(tf.train.list_variables(path))
        ours = {f"model_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE": v for i, v in enumerate(self.model.weights)}
        mismatched = [
            f"{variable.path} {tuple(variable.shape)} vs {tuple(saved.get(key, ())) if key in saved else 'absent'}"
            for key, variable in ours.items()
            if key not in saved or tuple(saved[key]) != tuple(variable.shape)
        ]
        if mismatched or len([k for k in saved if k.startswith("model_variables/")]) != len(ours):
            raise ValueError(
                f"The backup {path!r} is not of model {self.model.name!r}: "
                + ("; ".join(mismatched[:3]) if mismatched else "it holds a different number of variables")
                + f". Point backup_dir at this model's backups. Received: backup_dir={self.backup_dir!r}"
            )
        self._checkpoint.restore(path).assert_existing_objects_matched()

    def _save(self, epoch, step):
        self._position.assign([epoch, step])
        self._manager.save()
        self._steps_since_save = 0
