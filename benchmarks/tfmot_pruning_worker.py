"""tfmot's side of the pruning benchmark; runs inside ``benchmarks/.venv-tfmot``.

Standalone on purpose: it runs under tf_keras (``TF_USE_LEGACY_KERAS=1``), so it
imports neither kopt nor anything else from this repository. Every setting comes
from ``--settings`` (JSON written by ``benchmarks/pruning.py``), so both sides are
driven by the same numbers.

For one seed it trains the dense model of tfmot's "Pruning in Keras example",
fine-tunes it once without pruning (the step-time reference) and once per target
sparsity with ``prune_low_magnitude``, strips the wrappers, exports float and int8
TFLite files, scores them with the LiteRT interpreter on the whole test set and
writes one JSON document to ``--output``.

Usage::

    TF_USE_LEGACY_KERAS=1 benchmarks/.venv-tfmot/bin/python \
        benchmarks/tfmot_pruning_worker.py --data ../shared/data/mnist-22k.npz \
        --seed 0 --settings '{...}' --output /tmp/tfmot_seed0.json
"""

import argparse
import gzip
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

# Must be set before TensorFlow is imported; tfmot only works with tf_keras.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402

_INTERPRETER_BATCH = 256


class StepTimer(keras.callbacks.Callback):
    """Records the wall time between consecutive training-batch starts.

    Put it first in the callback list: one interval then covers the whole step
    (data, forward, backward, every other callback). Intervals of the first
    ``skip_epochs`` epochs (tracing, warm-up) and across epoch ends (validation)
    are left out.
    """

    def __init__(self, skip_epochs=1):
        super().__init__()
        self.skip_epochs = skip_epochs
        self.durations = []
        self.cpu_durations = []
        self._epoch = 0
        self._last_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._last_start = None

    def on_train_batch_begin(self, batch, logs=None):
        # Process CPU time beside wall time: on a shared machine it moves much
        # less with other people's load.
        now = (time.perf_counter(), time.process_time())
        if self._last_start is not None and self._epoch >= self.skip_epochs:
            self.durations.append(now[0] - self._last_start[0])
            self.cpu_durations.append(now[1] - self._last_start[1])
        self._last_start = now

    def extend(self, other):
        """Pools the intervals of another timer into this one."""
        self.durations += other.durations
        self.cpu_durations += other.cpu_durations


def load_arrays(path, max_train_examples=None):
    with np.load(path, allow_pickle=False) as archive:
        x_train, y_train = archive["x_train"], archive["y_train"]
        x_test, y_test = archive["x_test"], archive["y_test"]
    if max_train_examples:
        x_train, y_train = x_train[:max_train_examples], y_train[:max_train_examples]
    # As the example does: pixels scaled to [0, 1]; labels as class indices.
    return (
        (x_train / 255.0).astype(np.float32),
        y_train.astype(np.int32),
        (x_test / 255.0).astype(np.float32),
        y_test.astype(np.int32),
    )


def prune(model, schedule, keep_first_layer_dense):
    """Wraps every prunable layer, or all but the first one, as the comprehensive guide shows."""
    if not keep_first_layer_dense:
        return tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    first = [layer for layer in model.layers if layer.weights][0].name

    def wrap(layer):
        if layer.name == first or not layer.weights:
            return layer
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)

    return keras.models.clone_model(model, clone_function=wrap)


def build_model():
    """The model of tfmot's pruning_with_keras example, unchanged."""
    return keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(28, 28)),
            keras.layers.Reshape(target_shape=(28, 28, 1)),
            keras.layers.Conv2D(filters=12, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def compile_model(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def copy_of(model):
    # prune_low_magnitude wraps the given layers in place, so every fine-tune
    # starts from its own copy of the dense weights.
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def end_step(train_examples, settings):
    """The example's formula: steps per epoch of the split-off train part x epochs."""
    train_part = train_examples * (1 - settings["validation_split"])
    epochs = settings.get("end_step_epochs") or settings["prune_epochs"]
    return math.ceil(train_part / settings["prune_batch_size"]) * epochs


def kernel_sparsity(model):
    zeros = total = 0
    for weight in model.weights:
        if len(weight.shape) >= 2:
            values = weight.numpy()
            zeros += int(np.count_nonzero(values == 0))
            total += values.size
    return zeros / total if total else 0.0


def train_dense(x_train, y_train, settings, seed, build=None):
    """Builds and trains the dense model with the ``dense_*`` settings; returns it.

    ``build`` makes the model (no arguments); by default :func:`build_model`.
    """
    keras.utils.set_random_seed(seed)
    dense = (build or build_model)()
    compile_model(dense, settings["learning_rate"])
    dense.fit(
        x_train,
        y_train,
        batch_size=settings["dense_batch_size"],
        epochs=settings["dense_epochs"],
        validation_split=settings["validation_split"],
        verbose=0,
    )
    return dense


def fine_tune(model, x_train, y_train, settings, seed, extra_callbacks=()):
    """Pruning fine-tuning (``prune_*`` settings), timed; returns the :class:`StepTimer`."""
    return fit_timed(
        model, x_train, y_train,
        epochs=settings["prune_epochs"],
        batch_size=settings["prune_batch_size"],
        learning_rate=settings["learning_rate"],
        validation_split=settings["validation_split"],
        seed=seed,
        callbacks=extra_callbacks,
    )


def fit_timed(model, x_train, y_train, *, epochs, batch_size, learning_rate, validation_split, seed, callbacks=(),
              skip_epochs=1):
    """Compiles ``model`` with a fresh Adam and fits it with a :class:`StepTimer` first.

    Returns:
        The timer; the first ``skip_epochs`` epochs are not timed.
    """
    keras.utils.set_random_seed(seed)
    compile_model(model, learning_rate)
    timer = StepTimer(skip_epochs=skip_epochs)
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_split=validation_split,
        callbacks=[timer, *callbacks],
        verbose=0,
    )
    return timer


def step_stats(timer):
    """Mean and median wall time per step, and process CPU time, from a :class:`StepTimer`."""
    if not timer.durations:
        return {"step_time_s_mean": None, "step_time_s_median": None, "step_cpu_s_mean": None,
                "step_cpu_s_median": None, "timed_steps": 0}
    return {
        "step_time_s_mean": float(np.mean(timer.durations)),
        "step_time_s_median": float(np.median(timer.durations)),
        "step_cpu_s_mean": float(np.mean(timer.cpu_durations)),
        "step_cpu_s_median": float(np.median(timer.cpu_durations)),
        "timed_steps": len(timer.durations),
    }


def to_tflite(model, mode, calibration_images):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "int8":
        def representative():
            for image in calibration_images:
                yield [image[np.newaxis]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def tflite_top1(flatbuffer, images):
    """The file's top-1 class per image, run in the LiteRT interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    predictions = []
    current = None
    for start in range(0, len(images), _INTERPRETER_BATCH):
        chunk = images[start : start + _INTERPRETER_BATCH]
        if len(chunk) != current:
            interpreter.resize_tensor_input(input_detail["index"], list(chunk.shape))
            interpreter.allocate_tensors()
            current = len(chunk)
        interpreter.set_tensor(input_detail["index"], _quantize(chunk, input_detail))
        interpreter.invoke()
        predictions.append(np.argmax(interpreter.get_tensor(output_detail["index"]), axis=-1))
    return np.concatenate(predictions)


def _quantize(values, detail):
    if np.issubdtype(detail["dtype"], np.floating):
        return values.astype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(detail["dtype"])


def gzip_bytes(data):
    # Level 9 and mtime=0, as kopt's tflite_export.file_sizes does.
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def measure(model, x_test, y_test, calibration_images, workdir, name):
    _, keras_accuracy = model.evaluate(x_test, y_test, batch_size=_INTERPRETER_BATCH, verbose=0)
    keras_top1 = np.argmax(model.predict(x_test, batch_size=_INTERPRETER_BATCH, verbose=0), axis=-1)
    result = {"keras_accuracy": float(keras_accuracy), "sparsity": kernel_sparsity(model)}
    for mode in ("float32", "int8"):
        flatbuffer = to_tflite(model, mode, calibration_images)
        path = os.path.join(workdir, f"{name}_{mode}.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        top1 = tflite_top1(flatbuffer, x_test)
        result[f"tflite_{mode}_accuracy"] = float(np.mean(top1 == y_test))
        result[f"tflite_{mode}_agreement"] = float(np.mean(top1 == keras_top1))
        result[f"tflite_{mode}_path"] = path
        result[f"tflite_{mode}_bytes"] = len(flatbuffer)
        result[f"tflite_{mode}_gzip_bytes"] = gzip_bytes(flatbuffer)
    return result


def run(data, seed, settings, workdir, log):
    x_train, y_train, x_test, y_test = load_arrays(data, settings.get("max_train_examples"))
    calibration_images = x_train[: settings["representative_examples"]]
    log(f"tfmot seed {seed}: dense training, {settings['dense_epochs']} epochs")
    dense = train_dense(x_train, y_train, settings, seed)
    result = {"dense": measure(dense, x_test, y_test, calibration_images, workdir, "dense")}

    log(f"tfmot seed {seed}: plain fine-tuning (step-time reference)")
    plain = copy_of(dense)
    plain_timer = fine_tune(plain, x_train, y_train, settings, seed)
    _, plain_accuracy = plain.evaluate(x_test, y_test, batch_size=_INTERPRETER_BATCH, verbose=0)

    pruning_end = end_step(len(x_train), settings)
    result["end_step"] = pruning_end
    result["pruned"] = {}
    for target in settings["sparsities"]:
        log(f"tfmot seed {seed}: pruning to {target:.0%}")
        layer_target = settings["pruned_layer_sparsity"][f"{target:g}"]
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=min(settings["initial_sparsity"], layer_target),
            final_sparsity=layer_target,
            begin_step=settings["begin_step"],
            end_step=pruning_end,
            power=settings["power"],
            frequency=settings["frequency"],
        )
        model = prune(copy_of(dense), schedule, settings["keep_first_layer_dense"])
        timer = fine_tune(model, x_train, y_train, settings, seed, [tfmot.sparsity.keras.UpdatePruningStep()])
        stripped = tfmot.sparsity.keras.strip_pruning(model)
        compile_model(stripped, settings["learning_rate"])
        entry = measure(stripped, x_test, y_test, calibration_images, workdir, f"pruned_{target}")
        entry.update(step_stats(timer))
        result["pruned"][f"{target:g}"] = entry
    # Timed again after the pruned runs and pooled, so a change in machine load
    # during the run weighs on both sides of the ratio.
    log(f"tfmot seed {seed}: plain fine-tuning again (step-time reference)")
    again = fine_tune(copy_of(dense), x_train, y_train, settings, seed)
    plain_timer.extend(again)
    result["plain_finetune"] = {**step_stats(plain_timer), "keras_accuracy": float(plain_accuracy)}
    return result


def versions():
    from importlib import metadata

    return {
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "tensorflow_model_optimization": tfmot.__version__,
        "ai_edge_litert": metadata.version("ai-edge-litert"),
        "python": sys.version.split()[0],
    }


def main(argv=None, *, run_seed=None, description=None):
    """Parses the worker's arguments, runs one seed and writes its JSON result.

    ``run_seed(data, seed, settings, workdir, log)`` defaults to this module's
    :func:`run`; ``tfmot_quantization_worker.py`` passes its own.
    """
    parser = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--settings", required=True, help="JSON object of training settings")
    parser.add_argument("--output", required=True, help="where to write the JSON result")
    parser.add_argument("--workdir", default=None, help="where to keep the .tflite files")
    args = parser.parse_args(argv)
    settings = json.loads(args.settings)

    def log(message):
        print(message, file=sys.stderr, flush=True)

    workdir = args.workdir or tempfile.mkdtemp(prefix="tfmot-benchmark-")
    os.makedirs(workdir, exist_ok=True)
    started = time.perf_counter()
    result = (run_seed or run)(args.data, args.seed, settings, workdir, log)
    result.update(
        framework="tfmot",
        seed=args.seed,
        versions=versions(),
        keras_in_use=tf.keras.__name__,
        wall_time_s=time.perf_counter() - started,
    )
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({"seed": args.seed, "output": args.output}))


if __name__ == "__main__":
    main()
