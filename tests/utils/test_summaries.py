"""Tests for kopt/utils/summaries.py: scalars TensorBoard reads, written without the tensorboard package."""

import doctest

import keras
import numpy as np
import tensorflow as tf

from kopt.utils import summaries


def _events(folder):
    values = {}
    for path in tf.io.gfile.glob(f"{folder}/events.out.tfevents*"):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                number = tf.make_ndarray(value.tensor).item()
                values[value.tag] = (event.step, number, value.metadata.plugin_data.plugin_name)
    return values


def test_write_scalar_writes_a_scalar_event_at_its_step(tmp_path):
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        summaries.write_scalar("dense/sparsity", 0.75, step=12)
    assert _events(tmp_path) == {"dense/sparsity": (12, 0.75, "scalars")}


def test_training_step_reads_the_optimizer_or_falls_back_to_batches_seen():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert summaries.training_step(model, batches_seen=5) == 5  # not compiled: no optimizer
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((8, 2)), np.zeros((8, 1)), batch_size=4, epochs=1, verbose=0)
    assert summaries.training_step(model, batches_seen=99) == 2


def test_docstring_examples_run():
    assert doctest.testmod(summaries).failed == 0
