"""The float training stage: compile and fit a classifier with the recipe's settings."""

import keras
import tensorflow as tf
from absl import logging

from kopt.distribute import fit as distributed_fit

from kopt.models import outputs_probabilities


def compile_classifier(model, learning_rate):
    """Compiles ``model`` with Adam, sparse cross-entropy and accuracy.

    The loss reads logits or probabilities according to the model's output layer,
    so both built-in (logits) and user models (often softmax) train correctly.
    """
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not outputs_probabilities(model))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=loss,
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def train_classifier(model, train, *, epochs, learning_rate, callbacks=None, verbose="auto"):
    """Compiles and fits ``model`` on ``train``; returns the Keras ``History``.

    Args:
        model: A classifier as accepted by :func:`kopt.models.check_classifier`.
        train: Batched, already shuffled ``(images, labels)`` dataset.
        epochs: Number of epochs.
        learning_rate: Adam learning rate.
        callbacks: Extra Keras callbacks (e.g. a technique's step updater).
        verbose: Keras ``fit`` verbosity; ``"auto"`` shows a progress bar on a terminal.

    Under ``MultiWorkerMirroredStrategy`` (a model built in its scope) training
    runs through :func:`kopt.distribute.fit`, elsewhere through ``model.fit``.
    """
    compile_classifier(model, learning_rate)
    logging.info("Training %s for %d epochs (learning rate %g).", model.name, epochs, learning_rate)
    if isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras 3's model.fit fails across workers (keras-team/keras#20585).
        return distributed_fit(model, train, epochs=epochs, callbacks=callbacks, verbose=verbose)
    # The dataset shuffles itself; Keras' own shuffle flag does not apply to datasets.
    return model.fit(train, epochs=epochs, callbacks=callbacks or [], shuffle=False, verbose=verbose)

