"""One seed of the distillation benchmark: teacher, scratch student, distilled student."""

import time

import keras
import numpy as np

from benchmarks.pruning_kopt import load_arrays
from kopt.distillation import Distiller
from kopt.distillation import teacher_logits
from kopt.models import get_model

NUM_CLASSES = 10


def split(data, settings):
    """``(x_train, y_train, x_val, y_val, x_test, y_test)``: images ``(N, 28, 28, 1)`` in [0, 1]."""
    x_train, y_train, x_test, y_test = load_arrays(data, settings.max_train_examples)
    x_train, x_test = x_train[..., None], x_test[..., None]
    held_out = int(round(len(x_train) * settings.validation_split))
    return (
        x_train[:-held_out], y_train[:-held_out], x_train[-held_out:], y_train[-held_out:], x_test, y_test
    )


def accuracy(model, images, labels):
    """Top-1 accuracy of ``model``'s logits, in percent."""
    logits = model.predict(images, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == labels) * 100)


def _compile(model, learning_rate, *, hard_loss):
    kwargs = {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)} if hard_loss else {}
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), metrics=["accuracy"], **kwargs)


def run(data, seed, settings, log=print):
    """Trains the teacher and both students for ``seed``; returns their accuracies (percent).

    Returns:
        A dict with ``teacher``, ``scratch`` and ``distilled``, each holding
        ``val_accuracy``, ``test_accuracy``, ``params`` and ``train_s``.
    """
    x_train, y_train, x_val, y_val, x_test, y_test = split(data, settings)
    shape = tuple(x_train.shape[1:])
    result = {}

    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    teacher = get_model(settings.teacher, shape, NUM_CLASSES)
    _compile(teacher, settings.learning_rate, hard_loss=True)
    teacher.fit(x_train, y_train, batch_size=settings.batch_size, epochs=settings.teacher_epochs, verbose=0)
    result["teacher"] = _scores(teacher, started, x_val, y_val, x_test, y_test)
    log(f"seed {seed}: teacher {result['teacher']}")
    started = time.perf_counter()
    logits = teacher_logits(teacher, x_train, batch_size=512)
    result["teacher_logits_s"] = time.perf_counter() - started

    # Both students start from the same weights and see the examples in the same order.
    keras.utils.set_random_seed(seed + 1000)
    initial = get_model(settings.student, shape, NUM_CLASSES).get_weights()
    order_seed = seed + 2000
    for kind in ("scratch", "distilled"):
        student = get_model(settings.student, shape, NUM_CLASSES)
        student.set_weights(initial)
        keras.utils.set_random_seed(order_seed)
        started = time.perf_counter()
        if kind == "scratch":
            _compile(student, settings.learning_rate, hard_loss=True)
            student.fit(x_train, y_train, batch_size=settings.batch_size, epochs=settings.student_epochs, verbose=0)
        else:
            distiller = Distiller(student, teacher, alpha=settings.alpha, temperature=settings.temperature)
            _compile(distiller, settings.learning_rate, hard_loss=False)
            targets = {"labels": y_train, "teacher_logits": logits}
            distiller.fit(x_train, targets, batch_size=settings.batch_size, epochs=settings.student_epochs, verbose=0)
        result[kind] = _scores(student, started, x_val, y_val, x_test, y_test)
        log(f"seed {seed}: {kind} {result[kind]}")
    return result


def _scores(model, started, x_val, y_val, x_test, y_test):
    return {
        "train_s": round(time.perf_counter() - started, 1),
        "val_accuracy": accuracy(model, x_val, y_val),
        "test_accuracy": accuracy(model, x_test, y_test),
        "params": int(model.count_params()),
    }
