"""One seed of the low-bit benchmark: the float CNN, each scheme with and without distillation, the files scored.

Per seed (:func:`run_seed`):

Every stage trains with Adam, its rate decayed to 0 by a cosine over the stage.

1. the float model (:func:`build_model`) trains
   ``float_epochs`` on the training split and is exported as float32 TFLite;
2. a copy of it trains ``finetune_epochs`` more at the low-bit rate: the float
   reference the quantized models are compared with (they train as long), and
   the teacher;
3. for each scheme (int8 QAT, 4-bit, ternary, binary), a quantization-aware copy
   of the float model of step 1 (``kopt.quantization.quantize_model``) fine-tunes
   ``finetune_epochs`` on the labels alone, and another copy inside a
   ``kopt.distillation.Distiller`` with the float reference as the frozen teacher;
4. every model is exported as int8 TFLite (``tflite_export.convert``) and its
   file scored on the whole test split in the LiteRT interpreter; beside the
   file's size, ``kopt.quantization.packed_size`` gives the bytes its weights
   take packed at their own bit widths, and the file's kernels are read back to
   count the int8 values each output channel holds.
"""

import os
import time

import keras
import numpy as np

import tflite_export
from benchmarks import quantization_models
from benchmarks.core.scoring import interpreter_top1
from kopt import quantization
from kopt.distillation import Distiller
from tflite_export.flatbuffer import TFLiteFlatbuffer

__all__ = ["LOW_BIT", "SCHEMES", "build_model", "channel_values", "run_seed"]

# scheme name -> (label, weight bits of its low-bit layers)
SCHEMES = {"8bit": ("int8 QAT", 8), "4bit": ("4-bit", 4), "ternary": ("ternary", 2), "binary": ("binary", 1)}
LOW_BIT = ("ternary", "binary")
_WEIGHTED_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}  # op -> its output-channel axis


def build_model(settings):
    """``settings.model`` for the data of ``settings.dataset``: MNIST digits, or CIFAR-10's colour images."""
    if settings.dataset == "cifar10":
        return quantization_models.conv_bn_cnn(keras, (32, 32, 3), name=f"{settings.model}_cifar10")
    return quantization_models.build(settings.model, keras)


def run_seed(settings, seed, data, workdir):
    """Every row of one seed: the float model's, then one per scheme and distillation choice."""
    x_train, y_train, x_test, y_test = data
    keras.utils.set_random_seed(seed)
    trained = build_model(settings)
    steps = -(-len(x_train) // settings.batch_size)  # per epoch
    _compile(trained, _schedule(settings, settings.learning_rate, steps * settings.float_epochs))
    start = time.process_time()
    trained.fit(x_train, y_train, batch_size=settings.batch_size, epochs=settings.float_epochs, verbose=0)
    float_seconds = time.process_time() - start
    rows = [_score(trained, "float", False, "float32", seed, x_test, y_test, workdir, float_seconds)]
    # The float reference trains as long as the quantized models, at the low-bit rate: the
    # extra epochs alone would otherwise count for quantization. It is also the teacher
    # (a copy of its own, as a Distiller freezes its teacher and quantize_model copies that).
    keras.utils.set_random_seed(seed)
    teacher = keras.models.clone_model(trained)
    teacher.set_weights(trained.get_weights())
    _compile(teacher, _schedule(settings, settings.low_bit_learning_rate, steps * settings.finetune_epochs))
    start = time.process_time()
    teacher.fit(x_train, y_train, batch_size=settings.batch_size, epochs=settings.finetune_epochs, verbose=0)
    seconds = time.process_time() - start
    rows.append(_score(teacher, "float_continued", False, "float32", seed, x_test, y_test, workdir, seconds))
    for scheme in settings.schemes:
        for distilled in (False, True):
            keras.utils.set_random_seed(seed)
            student = quantization.quantize_model(trained, scheme=scheme)
            rate = settings.low_bit_learning_rate if scheme in LOW_BIT else settings.qat_learning_rate
            rate = _schedule(settings, rate, steps * settings.finetune_epochs)
            start = time.process_time()
            if distilled:
                # alpha and temperature as Hinton et al. recommend; the QAT copy counts
                # its ranges as parameters, so it is "larger" than the same float model.
                distiller = Distiller(
                    student,
                    teacher,
                    alpha=settings.distillation_alpha,
                    temperature=settings.temperature,
                    allow_larger_student=True,
                )
                distiller.compile(optimizer=keras.optimizers.Adam(rate), metrics=["accuracy"])
                distiller.fit(
                    x_train, y_train, batch_size=settings.batch_size, epochs=settings.finetune_epochs, verbose=0
                )
            else:
                _compile(student, rate)
                student.fit(
                    x_train, y_train, batch_size=settings.batch_size, epochs=settings.finetune_epochs, verbose=0
                )
            seconds = time.process_time() - start
            rows.append(_score(student, scheme, distilled, "int8", seed, x_test, y_test, workdir, seconds))
    return rows


def channel_values(path):
    """The most int8 values any output channel holds, per weighted op of the file, in execution order."""
    flatbuffer = TFLiteFlatbuffer(path)
    counts = []
    for op in flatbuffer.ops:
        if op.name not in _WEIGHTED_OPS:
            continue
        values = flatbuffer.values(op.inputs[1])
        if values is None or values.dtype != np.int8:
            counts.append(None)
            continue
        axis = _WEIGHTED_OPS[op.name]
        channels = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
        counts.append(max(len(np.unique(channel)) for channel in channels))
    return counts


def _schedule(settings, rate, steps):
    """Adam's rate (constant where ``settings.cosine`` is off), decayed to 0 over the stage's steps: a rate that stays high keeps the weights moving,
    and BatchNormalization's moving statistics lag them (the CIFAR-10 files of a constant rate scored the
    float model 9-11 points under its own QAT copy, which trains at a tenth of the rate)."""
    return keras.optimizers.schedules.CosineDecay(rate, max(1, steps)) if settings.cosine else rate


def _compile(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def _score(model, scheme, distilled, mode, seed, x_test, y_test, workdir, train_cpu_seconds):
    path = os.path.join(workdir, f"seed{seed}-{scheme}-{'distilled' if distilled else 'labels'}.tflite")
    tflite_export.convert(model, path, mode=mode)
    with open(path, "rb") as handle:
        flatbuffer = handle.read()
    accuracy = float(np.mean(interpreter_top1(flatbuffer, x_test) == y_test))
    sizes = tflite_export.file_sizes(path)
    packed = quantization.packed_size(model)
    return {
        "seed": seed,
        "scheme": scheme,
        "distilled": distilled,
        "tflite_accuracy": accuracy,
        "file_bytes": sizes["bytes"],
        "gzip_bytes": sizes["gzip_bytes"],
        "packed_bytes": packed["packed_bytes"],
        "float32_weight_bytes": packed["float32_bytes"],
        "max_values_per_channel": channel_values(path),
        "train_cpu_seconds": round(train_cpu_seconds, 1),
    }
