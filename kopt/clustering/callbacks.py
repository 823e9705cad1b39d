"""ClusteringSummaries: TensorBoard scalars that show what clustering does to each weight."""

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kopt.clustering.wrapper import ClusterWeights
from kopt.utils.summaries import training_step
from kopt.utils.summaries import write_scalar
from tflite_export.layers import all_layers

__all__ = ["ClusteringSummaries"]


@keras.saving.register_keras_serializable(package="kopt")
class ClusteringSummaries(keras.callbacks.Callback):
    """Writes per-weight clustering scalars for TensorBoard.

    For every clustered weight it logs ``<layer>/<weight>/unique_values`` (the
    distinct values the clustered weight holds, at most ``number_of_clusters``, or
    that many per channel) and ``<layer>/<weight>/sparsity`` (fraction of zeros),
    at the optimizer's step, into ``<log_dir>/metrics``.

    Args:
        log_dir: Directory for the event files.
        cluster_update_freq: ``"epoch"`` or ``"batch"`` (tfmot's name).

    Raises:
        ValueError: If ``log_dir`` is empty or ``cluster_update_freq`` is invalid.

    Example:

    >>> import tempfile
    >>> callback = ClusteringSummaries(log_dir=tempfile.mkdtemp())
    >>> callback.cluster_update_freq
    'epoch'
    """

    def __init__(self, log_dir: str | os.PathLike, cluster_update_freq: str = "epoch"):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
            raise ValueError(f"`log_dir` must be a non-empty path. Received: log_dir={log_dir!r}")
        if cluster_update_freq not in ("epoch", "batch"):
            raise ValueError(
                f"`cluster_update_freq` must be 'epoch' or 'batch'. Received: cluster_update_freq={cluster_update_freq!r}"
            )
        self.log_dir = os.fspath(log_dir)
        self.cluster_update_freq = cluster_update_freq
        self._writer = None
        self._batches_seen = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._wrappers = [layer for layer in all_layers(self.model) if isinstance(layer, ClusterWeights)]
        if not self._wrappers:
            raise ValueError(
                f"ClusteringSummaries: model {self.model.name!r} has no ClusterWeights layers. Cluster it with "
                "kopt.clustering.cluster_weights(model, number_of_clusters) and train the model it returns."
            )
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "metrics"))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches_seen += 1
        if self.cluster_update_freq == "batch":
            self._write()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.cluster_update_freq == "epoch":
            self._write()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.flush()

    def _write(self):
        step = training_step(self.model, self._batches_seen)
        with self._writer.as_default():
            for layer in self._wrappers:
                values = {id(v): value for v, value in zip(layer.layer.weights, layer.clustered_weights())}
                for weight in layer.clusterable_weights:
                    clustered = values[id(weight)]
                    prefix = f"{layer.name}/{weight.name}"
                    write_scalar(f"{prefix}/unique_values", len(np.unique(clustered)), step)
                    write_scalar(f"{prefix}/sparsity", float(np.mean(clustered == 0)), step)
        self._writer.flush()

    def get_config(self) -> dict[str, Any]:
        return {"log_dir": self.log_dir, "cluster_update_freq": self.cluster_update_freq}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ClusteringSummaries":
        return cls(**config)
