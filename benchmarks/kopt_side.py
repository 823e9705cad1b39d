"""What kopt's side of every suite shares: the Keras 3 trainer, versions, scoring a model.

Each suite's kopt recipe (``pruning_kopt``, ``quantization_kopt``,
``clustering_kopt``, ``extras_kopt``, ``distillation_run``) trains with
:data:`TRAINER` (``core.training`` bound to Keras 3), so its steps are timed
and its models copied exactly as the tfmot workers do with tf_keras.
"""

import sys

import keras
import numpy as np

from benchmarks.core import scoring
from benchmarks.core.training import Trainer

__all__ = ["TRAINER", "build_model", "keras_accuracy", "versions"]

TRAINER = Trainer(keras)


def build_model():
    """tfmot's pruning-example CNN, layer for layer, in Keras 3: the model of the pruning,
    clustering and extras suites (the workers build it with tf_keras)."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Reshape(target_shape=(28, 28, 1)),
            keras.layers.Conv2D(filters=12, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def keras_accuracy(model, images, labels):
    """Top-1 accuracy of the Keras model's logits on ``images``."""
    logits = model.predict(images, batch_size=scoring.PREDICT_BATCH, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def versions():
    """The versions kopt's rows ran with."""
    from importlib import metadata

    import tensorflow as tf

    import kopt

    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "kopt": kopt.__version__,
        "ai_edge_litert": metadata.version("ai-edge-litert"),
        "python": sys.version.split()[0],
    }
