"""Training and step timing, the same on both sides: Keras 3 for kopt, tf_keras for tfmot.

:class:`Trainer` binds the functions to one Keras module, so kopt's side and the
tfmot workers train, copy and time models with the same code::

    trainer = Trainer(keras)          # or Trainer(tf_keras) in a worker
    dense = trainer.train_dense(x_train, y_train, settings, seed, build=build_model)
    timer = trainer.fit_timed(trainer.copy_of(dense), x_train, y_train, epochs=2, ...)
    step_stats(timer)
"""

import math
import time

import numpy as np

__all__ = ["StepTimes", "Trainer", "end_step", "step_stats"]


class StepTimes:
    """Records the wall time between consecutive training-batch starts.

    The logic of the step timer; :attr:`Trainer.StepTimer` makes it a callback of
    the Keras in use. Put it first in the callback list so one interval covers the
    whole step (data, forward, backward, every other callback). Intervals of the
    first ``skip_epochs`` epochs (tracing, warm-up) and across epoch ends
    (validation) are left out.
    """

    def __init__(self, skip_epochs=1):
        super().__init__()
        self.skip_epochs = skip_epochs
        self.durations = []
        self.cpu_durations = []
        self._epoch = 0
        self._last_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._last_start = None

    def on_train_batch_begin(self, batch, logs=None):
        # Process CPU time beside wall time: on a shared machine it moves much
        # less with other people's load.
        now = (time.perf_counter(), time.process_time())
        if self._last_start is not None and self._epoch >= self.skip_epochs:
            self.durations.append(now[0] - self._last_start[0])
            self.cpu_durations.append(now[1] - self._last_start[1])
        self._last_start = now

    def extend(self, other):
        """Pools the intervals of another timer into this one."""
        self.durations += other.durations
        self.cpu_durations += other.cpu_durations


def step_stats(timer):
    """Mean and median wall time per step, and process CPU time, of a step timer."""
    if not timer.durations:
        return {
            "step_time_s_mean": None,
            "step_time_s_median": None,
            "step_cpu_s_mean": None,
            "step_cpu_s_median": None,
            "timed_steps": 0,
        }
    return {
        "step_time_s_mean": float(np.mean(timer.durations)),
        "step_time_s_median": float(np.median(timer.durations)),
        "step_cpu_s_mean": float(np.mean(timer.cpu_durations)),
        "step_cpu_s_median": float(np.median(timer.cpu_durations)),
        "timed_steps": len(timer.durations),
    }


def end_step(train_examples, settings):
    """tfmot's pruning example's formula: steps per epoch of the split-off train part x epochs."""
    train_part = train_examples * (1 - settings["validation_split"])
    epochs = settings.get("end_step_epochs") or settings["prune_epochs"]
    return math.ceil(train_part / settings["prune_batch_size"]) * epochs


class Trainer:
    """Compiles, copies, trains and times models with one Keras module.

    Attributes:
        keras: The Keras module in use (``keras`` or ``tf_keras``).
        StepTimer: :class:`StepTimes` as a callback of that Keras.
    """

    def __init__(self, keras):
        self.keras = keras
        self.StepTimer = type("StepTimer", (StepTimes, keras.callbacks.Callback), {})

    def compile_model(self, model, learning_rate):
        """Adam at ``learning_rate``, cross-entropy on logits, accuracy."""
        keras = self.keras
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )

    def copy_of(self, model):
        """A clone with ``model``'s weights: every fine-tune starts from its own copy
        (tfmot's wrappers change the layers they are given)."""
        clone = self.keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        return clone

    def train_dense(self, x_train, y_train, settings, seed, build):
        """Builds the model with ``build()`` and trains it with the ``dense_*`` settings; returns it."""
        self.keras.utils.set_random_seed(seed)
        dense = build()
        self.compile_model(dense, settings["learning_rate"])
        dense.fit(
            x_train,
            y_train,
            batch_size=settings["dense_batch_size"],
            epochs=settings["dense_epochs"],
            validation_split=settings["validation_split"],
            verbose=0,
        )
        return dense

    def fit_timed(
        self,
        model,
        x_train,
        y_train,
        *,
        epochs,
        batch_size,
        learning_rate,
        validation_split,
        seed,
        callbacks=(),
        skip_epochs=1,
    ):
        """Compiles ``model`` with a fresh Adam and fits it with a step timer first.

        Returns:
            The timer; the first ``skip_epochs`` epochs are not timed (for a one-epoch
            fit pass 0 and read the median, which the first, tracing step does not move).
        """
        self.keras.utils.set_random_seed(seed)
        self.compile_model(model, learning_rate)
        timer = self.StepTimer(skip_epochs=skip_epochs)
        model.fit(
            x_train,
            y_train,
            batch_size=batch_size,
            epochs=epochs,
            validation_split=validation_split,
            callbacks=[timer, *callbacks],
            verbose=0,
        )
        return timer

    def fine_tune(self, model, x_train, y_train, settings, seed, callbacks=(), *, stage="prune"):
        """Fine-tunes ``model`` with the settings of ``stage``, timed; returns the timer.

        The settings read are ``<stage>_epochs``, ``<stage>_batch_size`` and
        ``<stage>_learning_rate`` where the settings have one, else ``learning_rate``
        (pruning fine-tunes at the training rate, QAT at its own).
        """
        return self.fit_timed(
            model,
            x_train,
            y_train,
            epochs=settings[f"{stage}_epochs"],
            batch_size=settings[f"{stage}_batch_size"],
            learning_rate=settings.get(f"{stage}_learning_rate", settings["learning_rate"]),
            validation_split=settings["validation_split"],
            seed=seed,
            callbacks=callbacks,
        )
