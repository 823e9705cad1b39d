"""``kopt.distribute.fit``: ``model.fit`` for every strategy, multi-worker included.

Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585). Two steps of its TensorFlow trainer break:

1. Before the first step it reduces the first distributed batch across workers
   to get a batch to build with, handing ``strategy.reduce`` a tuple
   ``(x, y)`` of per-replica values; the multi-worker strategy accepts only a
   single value there and fails converting the tuple to a tensor.
2. After every step it averages the step's logs over workers with
   ``strategy.reduce("MEAN", value, axis=0)``; the logs are scalars, which
   have no axis 0.

Both are private code paths of Keras. This module runs the model's own
``train_step`` and ``test_step`` (so custom steps, such as
:class:`kopt.distillation.Distiller`'s, work unchanged) under
``strategy.run`` in a ``tf.function``, and averages the logs with
``axis=None``. Variables the first step creates (optimizer slots, metric
accumulators) are created while it is traced, which every strategy allows. The
same Keras callbacks drive it: a progress bar, ``History``, kopt's pruning
callbacks and :class:`kopt.distribute.BackupAndRestore`.
"""

import sys
from collections.abc import Sequence

import keras
import tensorflow as tf

__all__ = ["fit", "progress_verbosity"]


def fit(
    model: keras.Model,
    dataset: tf.data.Dataset,
    *,
    epochs: int = 1,
    steps_per_epoch: int | None = None,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    validation_data: tf.data.Dataset | None = None,
    initial_epoch: int = 0,
    verbose: str | int = "auto",
) -> keras.callbacks.History:
    """Trains ``model`` on ``dataset`` under the strategy it was built in.

    Args:
        model: A compiled ``keras.Model``, created inside ``strategy.scope()``
            (outside any scope it trains on one device, like ``model.fit``).
        dataset: A ``tf.data.Dataset`` of ``(x, y)`` or ``(x, y, sample_weight)``
            batches of the *global* batch size; the strategy splits each batch
            over replicas and, across workers, shards by data.
        epochs: Index of the last epoch to train, as in ``model.fit``.
        steps_per_epoch: Batches per epoch. Default: the dataset's length, which
            must then be known (``dataset.cardinality()``), since every worker
            must run the same number of steps.
        callbacks: Keras callbacks. A :class:`kopt.distribute.BackupAndRestore`
            among them restores the latest backup before training and resumes
            at the epoch *and step* it was taken.
        validation_data: Optional dataset evaluated with ``model.test_step`` at
            the end of each epoch; its logs get the ``val_`` prefix.
        initial_epoch: Epoch to start from (overridden by a restored backup).
        verbose: ``"auto"``/``1`` progress bar, ``2`` one line per epoch, ``0`` silent.

    Returns:
        The ``keras.callbacks.History`` of the run.

    Raises:
        ValueError: For an uncompiled model, a dataset that is not a
            ``tf.data.Dataset``, bad epoch counts, or an unknown dataset length
            without ``steps_per_epoch``.

    Example:

    >>> import numpy as np, tensorflow as tf, keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> data = tf.data.Dataset.from_tensor_slices((np.ones((8, 3)), np.ones((8, 1)))).batch(4)
    >>> history = fit(model, data, epochs=2, verbose=0)
    >>> len(history.history["loss"])
    2
    """
    _check_arguments(model, dataset, epochs, steps_per_epoch, initial_epoch, validation_data)
    strategy = model.distribute_strategy
    steps = int(steps_per_epoch) if steps_per_epoch is not None else int(dataset.cardinality())
    if steps < 1:
        raise ValueError(
            "fit needs steps_per_epoch when the dataset's length is unknown or infinite. "
            f"Received: steps_per_epoch={steps_per_epoch!r}, dataset.cardinality()={int(dataset.cardinality())}"
        )
    callbacks = list(callbacks or [])
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        verbose=progress_verbosity(verbose),
        model=model,
        epochs=epochs,
        steps=steps,
    )
    train_step = _distributed_step(strategy, model.train_step)
    test_step = _distributed_step(strategy, model.test_step) if validation_data is not None else None
    distributed = strategy.experimental_distribute_dataset(_shard_by_data(dataset))

    model.stop_training = False
    try:
        return _train(model, strategy, callbacks, callback_list, distributed, train_step, test_step, validation_data,
                      initial_epoch, epochs, steps)  # fmt: skip
    finally:
        for callback in callbacks:  # a crash or preemption must not leave a SIGTERM handler behind
            stop = getattr(callback, "stop_watching", None)
            if callable(stop):
                stop()


def progress_verbosity(verbose):
    """Keras's ``verbose`` with ``"auto"`` resolved: a bar on a terminal, one line per epoch in a file or pipe.

    A bar redrawn in place reads well on a terminal; in a log file each redraw is a line of noise.

    Example:

    >>> progress_verbosity(0), progress_verbosity(2)
    (0, 2)
    """
    if verbose != "auto":
        return verbose
    return 1 if sys.stdout.isatty() else 2


def _train(model, strategy, callbacks, callback_list, distributed, train_step, test_step, validation_data,
           initial_epoch, epochs, steps):  # fmt: skip
    callback_list.on_train_begin()
    # A restored backup says where training stopped.
    start_epoch, skip_steps = initial_epoch, 0
    for callback in callbacks:
        resume = getattr(callback, "resume_point", None)
        if callable(resume) and resume() is not None:
            start_epoch, skip_steps = resume()
    logs = {}
    for epoch in range(start_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        iterator = iter(distributed)
        for _ in range(skip_steps):
            next(iterator)  # Batches trained before the backup; the data order stays the same.
        for step in range(skip_steps, steps):
            callback_list.on_train_batch_begin(step)
            logs = _to_python(train_step(iterator))
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        skip_steps = 0
        epoch_logs = dict(logs)
        if test_step is not None:
            epoch_logs.update(_evaluate(model, strategy, test_step, validation_data))
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return model.history


def _check_arguments(model, dataset, epochs, steps_per_epoch, initial_epoch, validation_data):
    if not isinstance(model, keras.Model):
        raise ValueError(f"fit trains a keras.Model. Received: model of type {type(model).__name__}")
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            f"Model {model.name!r} is not compiled; call model.compile(...) inside strategy.scope() first."
        )
    for name, data in (("dataset", dataset), ("validation_data", validation_data)):
        if data is not None and not isinstance(data, tf.data.Dataset):
            raise ValueError(
                f"{name} must be a batched tf.data.Dataset. Received: {name} of type {type(data).__name__}"
            )
    for name, value, low in (("epochs", epochs, 1), ("initial_epoch", initial_epoch, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}. Received: {name}={value!r}")
    if validation_data is not None and int(validation_data.cardinality()) < 1:
        raise ValueError(
            "validation_data must have a known, finite length so every worker evaluates the same batches. "
            f"Received: validation_data.cardinality()={int(validation_data.cardinality())}"
        )
    if initial_epoch >= epochs:
        raise ValueError(
            f"initial_epoch must be below epochs. Received: initial_epoch={initial_epoch}, epochs={epochs}"
        )
    if steps_per_epoch is not None and (
        isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1
    ):
        raise ValueError(f"steps_per_epoch must be a positive integer. Received: steps_per_epoch={steps_per_epoch!r}")


def _shard_by_data(dataset):
    # In-memory datasets have no files to shard by; say so instead of letting
    # the multi-worker strategy try files first and log a warning every run.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _distributed_step(strategy, step_function):
    @tf.function
    def run(iterator):
        outputs = strategy.run(step_function, args=(next(iterator),))
        # The logs are scalars: average them over replicas (and workers) whole.
        return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), outputs)

    return run


def _evaluate(model, strategy, test_step, validation_data):
    model.reset_metrics()
    logs = {}
    iterator = iter(strategy.experimental_distribute_dataset(_shard_by_data(validation_data)))
    for _ in range(int(validation_data.cardinality())):
        logs = _to_python(test_step(iterator))
    return {f"val_{name}": value for name, value in logs.items()}


def _to_python(logs):
    flat = {}
    for name, value in logs.items():
        if isinstance(value, dict):  # Compiled metrics nested under one key.
            flat.update(_to_python(value))
        else:
            flat[name] = float(value)
    return flat
