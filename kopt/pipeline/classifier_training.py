"""Compile and fit a classifier with a :class:`kopt.training.TrainingConfig`."""

import keras
import tensorflow as tf
from absl import logging

from kopt.distribute import BackupAndRestore
from kopt.distribute import fit as distributed_fit
from kopt.distribute.trainer import progress_verbosity
from kopt.errors import TrainingError
from kopt.models import accuracy_metric
from kopt.models import classification_loss
from kopt.pipeline import resume
from kopt.training import TrainingConfig
from kopt.training import reestimate_batch_norm
from kopt.training import training_objects


def compile_classifier(model, learning_rate=1e-3, *, optimizer=None):
    """Compiles ``model`` with cross-entropy and accuracy on integer labels.

    Args:
        model: The classifier.
        learning_rate: Adam's rate, when no ``optimizer`` is given.
        optimizer: A Keras optimizer to use instead.

    The loss reads logits or probabilities according to the model's output layer,
    so both built-in (logits) and user models (often softmax) train correctly; a
    one-score binary classifier trains with binary cross-entropy
    (:func:`kopt.models.classification_loss`).
    """
    model.compile(
        optimizer=optimizer if optimizer is not None else keras.optimizers.Adam(learning_rate=learning_rate),
        loss=classification_loss(model),
        metrics=[accuracy_metric(model)],
    )
    return model


def train_classifier(
    model,
    train,
    *,
    config=None,
    epochs=None,
    learning_rate=None,
    validation=None,
    callbacks=None,
    early_stopping_from_epoch=0,
    steps_per_epoch=None,
    verbose="auto",
):
    """Compiles and fits ``model`` on ``train``; returns the Keras ``History``.

    Args:
        model: A classifier as accepted by :func:`kopt.models.check_classifier`.
        train: Batched, already shuffled ``(images, labels)`` dataset of known length.
        config: A :class:`kopt.training.TrainingConfig`; or give ``epochs`` and
            ``learning_rate`` for Adam at a constant rate.
        epochs: Epochs, when no ``config`` is given.
        learning_rate: Adam's rate, when no ``config`` is given.
        validation: Batched validation dataset; needed by the plateau schedule
            and early stopping, evaluated after each epoch when given.
        callbacks: Extra Keras callbacks (e.g. a technique's step updater).
        early_stopping_from_epoch: See :func:`kopt.training.training_objects`.
        steps_per_epoch: Batches in one epoch of ``train``, for schedules; by
            default ``train.cardinality()``, which must then be known.
        verbose: Keras ``fit`` verbosity; ``"auto"`` shows a progress bar on a terminal
            and one line per epoch when standard output is a file or pipe.

    Raises:
        ValueError: If ``config`` needs a validation set and none is given.

    Under ``MultiWorkerMirroredStrategy`` (a model built in its scope), and
    inside a run's :func:`kopt.pipeline.resume.phase` (backed up, resumable,
    stopped cleanly by SIGTERM), training runs through :func:`kopt.distribute.fit`,
    elsewhere through ``model.fit``.
    """
    if config is None:
        config = TrainingConfig(epochs=epochs, learning_rate=learning_rate)
    if config.needs_validation and validation is None:
        raise ValueError(
            "The plateau schedule and early stopping read the validation loss; pass `validation`. "
            f"Received: lr_schedule={config.lr_schedule!r}, early_stopping_patience={config.early_stopping_patience!r}"
        )
    steps = int(train.cardinality()) if steps_per_epoch is None else steps_per_epoch
    if steps < 1:
        raise ValueError(
            "Give steps_per_epoch for a dataset of unknown length. "
            f"Received: steps_per_epoch={steps_per_epoch!r}, train.cardinality()={int(train.cardinality())}"
        )
    optimizer, own_callbacks = training_objects(
        config, steps_per_epoch=steps, early_stopping_from_epoch=early_stopping_from_epoch
    )
    compile_classifier(model, optimizer=optimizer)
    logging.info(
        "Training %s for %d epochs (%s, learning rate %g, %s schedule).",
        model.name,
        config.epochs,
        config.optimizer,
        config.learning_rate,
        config.lr_schedule,
    )
    verbose = progress_verbosity(verbose)  # "auto": no bar redraws in a log file
    # A NaN loss stops training at once; the check below then says why.
    callbacks = list(callbacks or []) + own_callbacks + [keras.callbacks.TerminateOnNaN()]
    backup_dir = resume.next_backup_dir()
    if backup_dir is not None:
        # Backed up each epoch and on SIGTERM; kept at its end until the run finishes,
        # so a rerun restores a finished training and skips it (kopt.pipeline.resume).
        callbacks.append(BackupAndRestore(backup_dir, delete_checkpoint=False))
    if backup_dir is not None or isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras 3's model.fit fails across workers (keras-team/keras#20585), and
        # cannot resume mid-epoch from a backup; kopt's fit does both.
        history = distributed_fit(
            model, train, epochs=config.epochs, callbacks=callbacks, validation_data=validation, verbose=verbose
        )
    else:
        # The dataset shuffles itself; Keras' own shuffle flag does not apply to datasets.
        history = model.fit(
            train, epochs=config.epochs, callbacks=callbacks, validation_data=validation, shuffle=False, verbose=verbose
        )
    check_finite_weights(model, config)
    settle_batch_norm(model, train, config)
    return history


def settle_batch_norm(model, train, config):
    """Re-estimates ``model``'s BatchNormalization statistics on ``config.batch_norm_batches`` of ``train``.

    The moving averages lag behind the weights after a short training, and what
    the model predicts, is measured by and exports with are those averages
    (:mod:`kopt.training.batch_norm`).
    """
    if not config.batch_norm_batches:
        return
    names = reestimate_batch_norm(model, train, batches=config.batch_norm_batches)
    if names:
        logging.info(
            "Re-estimated the moving statistics of %d BatchNormalization layer(s) of %s on up to %d training "
            "batches (--batch_norm_batches).",
            len(names),
            model.name,
            config.batch_norm_batches,
        )


def check_finite_weights(model, config=None):
    """Raises :class:`kopt.TrainingError` if any weight of ``model`` is NaN or infinite.

    A diverged model would otherwise be exported, measured (as chance accuracy)
    and reported as if it were a result.

    Args:
        model: The trained model.
        config: The :class:`kopt.training.TrainingConfig` it was trained with,
            quoted in the message.
    """
    bad = [
        variable.path
        for variable in model.weights
        if not bool(keras.ops.convert_to_numpy(keras.ops.all(keras.ops.isfinite(variable))))
    ]
    if not bad:
        return
    shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    how = ""
    if config is not None:
        how = f" after training at learning rate {config.learning_rate:g} ({config.optimizer}, {config.lr_schedule})"
    raise TrainingError(
        f"Training {model.name} diverged: {shown} hold NaN or infinite values{how}. Lower the learning rate "
        "(--learning_rate, or --finetune_learning_rate for a technique's fine-tuning) or check the data."
    )
