"""Training hooks for pruned models: model.fit callbacks and a custom-loop helper.

``UpdatePruningStep`` is required when fitting a pruned model, as in tfmot: it
starts every wrapper's schedule (``pruning_step`` from -1 to 0; a loaded model
keeps its step and resumes) and bakes the masks into the weights at train begin,
epoch end and train end. The step itself advances inside the compiled training
step (see :mod:`kopt.pruning.wrapper`), which costs nothing per batch and stays
right with ``steps_per_execution``. Training a wrapper whose schedule was never
started raises an error that names this callback.

Custom training loop, two lines::

    pruning = kopt.pruning.PruningStep(model)   # before the first step
    for x, y in dataset:
        train_step(x, y)                        # calls model(x, training=True)
    pruning.finish()                            # after training (or each epoch)

tfmot's recipe (``set_model``, ``on_train_begin``, ``on_train_batch_begin`` and
``on_epoch_end(batch=...)`` on an ``UpdatePruningStep``) works unchanged too.
"""

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kopt.pruning.wrapper import PruneLowMagnitude
from kopt.utils.summaries import training_step
from kopt.utils.summaries import write_scalar

__all__ = ["PruningStep", "PruningSummaries", "UpdatePruningStep", "collect_prunable_layers"]


def collect_prunable_layers(model: keras.Model | keras.layers.Layer) -> list[PruneLowMagnitude]:
    """Returns the ``PruneLowMagnitude`` layers of ``model``, nested models included.

    Args:
        model: A ``keras.Model`` (or layer).

    Returns:
        The wrappers, in layer order.
    """
    found = []

    def visit(layer):
        if isinstance(layer, PruneLowMagnitude):
            if layer not in found:
                found.append(layer)
            return
        for sublayer in getattr(layer, "layers", None) or []:
            visit(sublayer)

    visit(model)
    return found


def _steps(wrappers):
    # A started wrapper that is not built yet gets its step at 0 when it is.
    return [int(keras.ops.convert_to_numpy(layer.pruning_step.value)) if layer.built else 0 for layer in wrappers]


def _require_wrappers(model, who):
    wrappers = collect_prunable_layers(model)
    if not wrappers:
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(
            f"{who}: model {name!r} has no PruneLowMagnitude layers. Prune it with "
            "kopt.pruning.prune_low_magnitude(model) and train the model it returns."
        )
    return wrappers


@keras.saving.register_keras_serializable(package="kopt")
class UpdatePruningStep(keras.callbacks.Callback):
    """Starts and finishes pruning schedules around ``model.fit``.

    Raises:
        ValueError: At train begin, if the model has no pruning wrappers.

    Example:

    >>> import keras, numpy as np
    >>> from kopt.pruning import prune_low_magnitude
    >>> model = prune_low_magnitude(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    >>> model.compile("sgd", "mse")
    >>> history = model.fit(np.ones((8, 4)), np.ones((8, 2)), verbose=0,
    ...                     callbacks=[UpdatePruningStep()])
    """

    def __init__(self):
        super().__init__()
        self.prunable_layers = []
        self._steps_at_epoch_begin = None
        self._batches_in_epoch = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.prunable_layers = _require_wrappers(self.model, "UpdatePruningStep")
        for layer in self.prunable_layers:
            layer.start_schedule()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._steps_at_epoch_begin = _steps(self.prunable_layers)
        self._batches_in_epoch = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches_in_epoch += 1

    def on_epoch_end(
        self, epoch: int | None = None, logs: dict[str, Any] | None = None, batch: int | None = None
    ) -> None:
        """Bakes the masks into the weights, so a checkpoint holds sparse weights.

        ``batch`` is accepted for tfmot's custom-loop recipe and ignored.

        Raises:
            RuntimeError: If batches ran but no wrapper was called in training
                mode, which would silently never prune.
        """
        if self._batches_in_epoch and self._steps_at_epoch_begin == _steps(self.prunable_layers):
            raise RuntimeError(
                "UpdatePruningStep: the model trained for an epoch but no PruneLowMagnitude layer was called "
                "with training=True, so nothing was pruned. A subclassed model's call() must accept a "
                "`training` argument and pass it to its layers."
            )
        self._steps_at_epoch_begin = None
        for layer in self.prunable_layers:
            if layer.built:
                layer.apply_masks()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.on_epoch_end()

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "UpdatePruningStep":
        return cls(**config)


class PruningStep:
    """Drives pruning in a custom training loop (what ``UpdatePruningStep`` does in fit).

    Creating it starts every wrapper's schedule; each ``model(x, training=True)``
    then advances it. Call :meth:`finish` after training, or each epoch, to bake
    the masks into the weights (``strip_pruning`` bakes them too).

    Args:
        model: A model holding ``PruneLowMagnitude`` layers, built.

    Raises:
        ValueError: If the model has no pruning wrappers.

    Example:

    >>> import keras, numpy as np
    >>> from kopt.pruning import prune_low_magnitude
    >>> model = prune_low_magnitude(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    >>> pruning = PruningStep(model)
    >>> _ = model(np.ones((1, 4), "float32"), training=True)
    >>> pruning.step
    1
    >>> pruning.finish()
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.prunable_layers = _require_wrappers(model, "PruningStep")
        for layer in self.prunable_layers:
            layer.start_schedule()

    @property
    def step(self) -> int:
        """The pruning step of the first wrapper: training calls seen so far."""
        return int(keras.ops.convert_to_numpy(self.prunable_layers[0].pruning_step.value))

    def finish(self) -> None:
        """Overwrites every prunable weight with ``weight * mask``."""
        for layer in self.prunable_layers:
            if layer.built:
                layer.apply_masks()


@keras.saving.register_keras_serializable(package="kopt")
class PruningSummaries(keras.callbacks.Callback):
    """Writes per-layer sparsity and threshold scalars for TensorBoard.

    For every pruned weight it logs ``<mask path>/sparsity`` (fraction of zeros in
    the mask) and ``<threshold path>/threshold``, and per wrapper
    ``<layer>/target_sparsity`` (the schedule's value), at the optimizer's step,
    into ``<log_dir>/metrics`` as tfmot does.

    Args:
        log_dir: Directory for the event files.
        update_freq: ``"epoch"``, ``"batch"``, or a number of batches.

    Raises:
        ValueError: If ``log_dir`` is empty or ``update_freq`` is invalid.

    Example:

    >>> import tempfile
    >>> callback = PruningSummaries(log_dir=tempfile.mkdtemp(), update_freq="epoch")
    """

    def __init__(self, log_dir: str | os.PathLike, update_freq: str | int = "epoch"):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
            raise ValueError(f"`log_dir` must be a non-empty path. Received: log_dir={log_dir!r}")
        if update_freq not in ("epoch", "batch") and not (
            isinstance(update_freq, int) and not isinstance(update_freq, bool) and update_freq > 0
        ):
            raise ValueError(
                f"`update_freq` must be 'epoch', 'batch' or a positive integer. Received: update_freq={update_freq!r}"
            )
        self.log_dir = os.fspath(log_dir)
        self.update_freq = update_freq
        self._writer = None
        self._batches_seen = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.prunable_layers = _require_wrappers(self.model, "PruningSummaries")
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "metrics"))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches_seen += 1
        every = 1 if self.update_freq == "batch" else self.update_freq
        if every != "epoch" and self._batches_seen % every == 0:
            self._write()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.update_freq == "epoch":
            self._write()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.flush()

    def _write(self):
        step = training_step(self.model, self._batches_seen)
        with self._writer.as_default():
            for layer in self.prunable_layers:
                last_step = max(int(keras.ops.convert_to_numpy(layer.pruning_step.value)) - 1, 0)
                _, target = layer.pruning_schedule(last_step)
                write_scalar(f"{layer.name}/target_sparsity", target, step)
                for _, mask, threshold in layer.pruning_vars:
                    write_scalar(f"{mask.path}/sparsity", 1.0 - np.mean(keras.ops.convert_to_numpy(mask.value)), step)
                    write_scalar(f"{threshold.path}/threshold", keras.ops.convert_to_numpy(threshold.value), step)
        self._writer.flush()

    def get_config(self) -> dict[str, Any]:
        return {"log_dir": self.log_dir, "update_freq": self.update_freq}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "PruningSummaries":
        return cls(**config)
