"""One seed of the distillation benchmark: teacher, scratch student, distilled student."""

import os
import time

import keras
import numpy as np

from benchmarks.core.data import load_arrays
from benchmarks.core.training import step_stats
from benchmarks.kopt_side import TRAINER
from kopt.distillation import Distiller
from kopt.distillation import teacher_logits
from kopt.models import get_model

NUM_CLASSES = 10


def split(data, settings):
    """``(x_train, y_train, x_val, y_val, x_test, y_test)``: images ``(N, 28, 28, 1)`` in [0, 1]."""
    x_train, y_train, x_test, y_test = load_arrays(data, settings.max_train_examples)
    x_train, x_test = x_train[..., None], x_test[..., None]
    held_out = int(round(len(x_train) * settings.validation_split))
    return (x_train[:-held_out], y_train[:-held_out], x_train[-held_out:], y_train[-held_out:], x_test, y_test)


def accuracy(model, images, labels):
    """Top-1 accuracy of ``model``'s logits, in percent."""
    logits = model.predict(images, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == labels) * 100)


def _compile(model, learning_rate, *, hard_loss):
    kwargs = {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)} if hard_loss else {}
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), metrics=["accuracy"], **kwargs)


def run(data, seed, settings, log=print, workdir=None):
    """Trains the teacher and both students for ``seed``; returns their accuracies (percent).

    Returns:
        A dict with ``teacher``, ``scratch``, ``distilled`` and ``hard`` (hard
        distillation: the teacher's arg-max as labels), each holding
        ``val_accuracy``, ``test_accuracy``, ``params`` and ``train_s``; the
        students also ``steps`` (time per training step, first epoch left out)
        and, with ``workdir``, ``tflite`` (their float32 file, scored on the test set).
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
    # "hard": the same Distiller with the teacher's arg-max as labels (kopt's distillation="hard").
    for kind in ("scratch", "distilled", "hard"):
        student = get_model(settings.student, shape, NUM_CLASSES)
        student.set_weights(initial)
        keras.utils.set_random_seed(order_seed)
        started = time.perf_counter()
        # A one-epoch run is timed from its first step; its median ignores tracing.
        timer = TRAINER.StepTimer(skip_epochs=1 if settings.student_epochs > 1 else 0)
        fit = {"batch_size": settings.batch_size, "epochs": settings.student_epochs, "verbose": 0, "callbacks": [timer]}
        if kind == "scratch":
            _compile(student, settings.learning_rate, hard_loss=True)
            student.fit(x_train, y_train, **fit)
        else:
            distiller = Distiller(
                student,
                teacher,
                alpha=settings.alpha,
                temperature=settings.temperature,
                distillation="soft" if kind == "distilled" else "hard",
            )
            _compile(distiller, settings.learning_rate, hard_loss=False)
            distiller.fit(x_train, {"labels": y_train, "teacher_logits": logits}, **fit)
        result[kind] = {**_scores(student, started, x_val, y_val, x_test, y_test), "steps": step_stats(timer)}
        if workdir is not None:
            result[kind]["tflite"] = _export_and_score(
                student, os.path.join(workdir, f"seed{seed}_{kind}.tflite"), x_test, y_test
            )
        log(f"seed {seed}: {kind} {result[kind]}")
    return result


def _export_and_score(model, path, x_test, y_test):
    """The model's float32 file: path, sizes, accuracy and agreement with Keras on the test set."""
    import tflite_export

    tflite_export.convert(model, path, mode="float32")
    checked = tflite_export.verify(path, model, [(x_test, y_test)])
    return {
        "path": path,
        "tflite_accuracy": checked["tflite_accuracy"],
        "keras_accuracy": checked["keras_accuracy"],
        "agreement": checked["agreement"],
        **tflite_export.file_sizes(path),
    }


def _scores(model, started, x_val, y_val, x_test, y_test):
    return {
        "train_s": round(time.perf_counter() - started, 1),
        "val_accuracy": accuracy(model, x_val, y_val),
        "test_accuracy": accuracy(model, x_test, y_test),
        "params": int(model.count_params()),
    }
