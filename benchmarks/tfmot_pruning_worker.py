"""tfmot's side of the pruning benchmark; runs inside ``benchmarks/.venv-tfmot``.

It runs under tf_keras (``TF_USE_LEGACY_KERAS=1``), so it imports nothing of
kopt; data loading, training, step timing and scoring come from ``core``
(``benchmarks/core``, this script's folder being first on ``sys.path``), the same
code kopt's side runs with Keras 3. Every setting comes from ``--settings``
(JSON written by ``benchmarks/pruning.py``), so both sides are driven by the
same numbers.

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
import json
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
from core.data import load_arrays  # noqa: E402
from core.scoring import PREDICT_BATCH  # noqa: E402
from core.scoring import gzip_bytes  # noqa: E402
from core.scoring import interpreter_top1  # noqa: E402
from core.scoring import kernel_sparsity  # noqa: E402
from core.training import Trainer  # noqa: E402
from core.training import end_step  # noqa: E402
from core.training import step_stats  # noqa: E402

# Training, copying and step timing as kopt's side does them, with tf_keras.
TRAINER = Trainer(keras)


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


def measure(model, x_test, y_test, calibration_images, workdir, name):
    _, keras_accuracy = model.evaluate(x_test, y_test, batch_size=PREDICT_BATCH, verbose=0)
    keras_top1 = np.argmax(model.predict(x_test, batch_size=PREDICT_BATCH, verbose=0), axis=-1)
    result = {"keras_accuracy": float(keras_accuracy), "sparsity": kernel_sparsity(model)}
    for mode in ("float32", "int8"):
        flatbuffer = to_tflite(model, mode, calibration_images)
        path = os.path.join(workdir, f"{name}_{mode}.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        top1 = interpreter_top1(flatbuffer, x_test)
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
    dense = TRAINER.train_dense(x_train, y_train, settings, seed, build_model)
    result = {"dense": measure(dense, x_test, y_test, calibration_images, workdir, "dense")}

    log(f"tfmot seed {seed}: plain fine-tuning (step-time reference)")
    plain = TRAINER.copy_of(dense)
    plain_timer = TRAINER.fine_tune(plain, x_train, y_train, settings, seed)
    _, plain_accuracy = plain.evaluate(x_test, y_test, batch_size=PREDICT_BATCH, verbose=0)

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
        model = prune(TRAINER.copy_of(dense), schedule, settings["keep_first_layer_dense"])
        timer = TRAINER.fine_tune(model, x_train, y_train, settings, seed, [tfmot.sparsity.keras.UpdatePruningStep()])
        stripped = tfmot.sparsity.keras.strip_pruning(model)
        TRAINER.compile_model(stripped, settings["learning_rate"])
        entry = measure(stripped, x_test, y_test, calibration_images, workdir, f"pruned_{target}")
        entry.update(step_stats(timer))
        result["pruned"][f"{target:g}"] = entry
    # Timed again after the pruned runs and pooled, so a change in machine load
    # during the run weighs on both sides of the ratio.
    log(f"tfmot seed {seed}: plain fine-tuning again (step-time reference)")
    again = TRAINER.fine_tune(TRAINER.copy_of(dense), x_train, y_train, settings, seed)
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
