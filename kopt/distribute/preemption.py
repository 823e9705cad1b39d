"""Preemption: SIGTERM saves a backup and stops training at the next step, on every worker.

Cluster managers (Kubernetes, preemptible VMs, ``timeout``) send SIGTERM and,
after a grace period, SIGKILL. :class:`kopt.distribute.BackupAndRestore` watches
for SIGTERM while training: the handler only raises a flag, and after each step
the workers agree whether any of them got one (a one-number all-reduce, so a
signal to one worker stops all of them at the same step). Then every worker
saves the backup for that step and :class:`Preempted` ends training; running the
same command again resumes from it.
"""

import signal
import threading

import tensorflow as tf

__all__ = ["Preempted", "SigtermWatch"]


class Preempted(RuntimeError):
    """Training stopped on SIGTERM after saving a backup; rerun to resume.

    Attributes:
        epoch: The epoch training stopped in (0-based).
        step: The steps of that epoch already trained (and saved).
        backup_dir: Where the backup is.
    """

    def __init__(self, epoch: int, step: int, backup_dir: str):
        self.epoch, self.step, self.backup_dir = epoch, step, backup_dir
        super().__init__(
            f"Stopped by SIGTERM in epoch {epoch + 1} after step {step}; the backup in {backup_dir!r} holds "
            "everything trained so far. Run the same command again to resume there."
        )


class SigtermWatch:
    """Turns SIGTERM into a flag for the duration of training.

    Only the main thread may set signal handlers; elsewhere the watch does
    nothing (and says so through :attr:`active`). A second SIGTERM before the
    step ends (or after a crashed loop left the watch behind) terminates as usual.

    Example:

    >>> import os, signal
    >>> watch = SigtermWatch()
    >>> watch.start()
    >>> os.kill(os.getpid(), signal.SIGTERM)
    >>> watch.requested
    True
    >>> watch.stop()
    """

    def __init__(self):
        self.requested = False
        self.active = False
        self._previous = None

    def start(self):
        if threading.current_thread() is not threading.main_thread():
            return
        self.requested = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        self.active = True

    def stop(self):
        if self.active:
            signal.signal(signal.SIGTERM, self._previous if self._previous is not None else signal.SIG_DFL)
            self.active = False

    def _handle(self, signum, frame):
        del frame
        if self.requested:
            # A second SIGTERM, or a watch a crashed training loop left behind:
            # give the signal its usual effect.
            self.stop()
            signal.raise_signal(signum)
            return
        self.requested = True

    def agreed(self, strategy, num_workers):
        """Whether any worker got SIGTERM; every worker must call it at the same step."""
        if num_workers <= 1:
            return self.requested
        flag = 1.0 if self.requested else 0.0
        values = strategy.experimental_distribute_values_from_function(lambda _: tf.constant(flag))
        return float(strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)) > 0.0
