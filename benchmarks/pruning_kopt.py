"""kopt's side of the pruning benchmark: the same steps as the tfmot worker, in Keras 3.

For one seed: train the dense model of tfmot's pruning example, fine-tune a copy
without pruning (the step-time reference), fine-tune a copy per target sparsity
with ``kopt.pruning.prune_low_magnitude``, strip, export float32 and int8 TFLite
with ``tflite_export`` and score the files with the LiteRT interpreter.

The result has the same keys as ``tfmot_pruning_worker.py`` writes, so the report
treats both sides alike.
"""

import math
import os
import sys
import time

import keras
import numpy as np

_EVAL_BATCH = 256


class StepTimer(keras.callbacks.Callback):
    """Records the wall time between consecutive training-batch starts.

    Put it first in the callback list so one interval covers the whole step (data,
    forward, backward, every other callback). Intervals of the first
    ``skip_epochs`` epochs (tracing, warm-up) and across epoch ends (validation)
    are left out. The worker has its own copy for tf_keras.
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
    """The npz archive as float32 images in [0, 1] (N, 28, 28) and int32 labels."""
    with np.load(path, allow_pickle=False) as archive:
        x_train, y_train = archive["x_train"], archive["y_train"]
        x_test, y_test = archive["x_test"], archive["y_test"]
    if max_train_examples:
        x_train, y_train = x_train[:max_train_examples], y_train[:max_train_examples]
    return (
        (x_train / 255.0).astype(np.float32),
        y_train.astype(np.int32),
        (x_test / 255.0).astype(np.float32),
        y_test.astype(np.int32),
    )


def build_model():
    """tfmot's pruning-example CNN, layer for layer, in Keras 3."""
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


def pruning_available():
    """Returns ``None`` if kopt.pruning has the tfmot-style API, else the reason."""
    try:
        from kopt import pruning
    except Exception as err:  # noqa: BLE001 - any import failure means kopt cannot prune.
        return f"kopt.pruning does not import ({type(err).__name__}: {err})"
    missing = [
        name
        for name in ("prune_low_magnitude", "strip_pruning", "PolynomialDecay", "UpdatePruningStep")
        if not hasattr(pruning, name)
    ]
    if missing:
        return f"kopt.pruning lacks {', '.join(missing)}"
    return None


def end_step(train_examples, settings):
    """The example's formula: steps per epoch of the split-off train part x epochs."""
    train_part = train_examples * (1 - settings["validation_split"])
    epochs = settings.get("end_step_epochs") or settings["prune_epochs"]
    return math.ceil(train_part / settings["prune_batch_size"]) * epochs


def run(data, seed, settings, workdir, log=print):
    """Runs kopt's side for one seed; ``settings`` is ``PruningSettings.as_dict()``."""
    from kopt.pipeline.measure import kernel_sparsity

    x_train, y_train, x_test, y_test = load_arrays(data, settings.get("max_train_examples"))
    calibration_images = x_train[: settings["representative_examples"]]
    os.makedirs(workdir, exist_ok=True)
    started = time.perf_counter()

    def measure(model, name):
        result = {"sparsity": kernel_sparsity(model)}
        for mode in ("float32", "int8"):
            result.update(_export_and_score(model, mode, calibration_images, x_test, y_test, workdir, name))
        return result

    log(f"kopt seed {seed}: dense training, {settings['dense_epochs']} epochs")
    dense = train_dense(x_train, y_train, settings, seed)
    result = {"dense": measure(dense, "dense")}

    log(f"kopt seed {seed}: plain fine-tuning (step-time reference)")
    plain = copy_of(dense)
    plain_timer = fine_tune(plain, x_train, y_train, settings, seed)
    plain_accuracy = keras_accuracy(plain, x_test, y_test)

    pruning_end = end_step(len(x_train), settings)
    result["end_step"] = pruning_end
    result["pruned"] = {}
    reason = pruning_available()
    if reason:
        log(f"kopt seed {seed}: pruning not run: {reason}")
        result["pruning_not_run"] = reason
    else:
        from kopt import pruning

        for target in settings["sparsities"]:
            log(f"kopt seed {seed}: pruning to {target:.0%}")
            layer_target = settings["pruned_layer_sparsity"][f"{target:g}"]
            schedule = pruning.PolynomialDecay(
                initial_sparsity=min(settings["initial_sparsity"], layer_target),
                final_sparsity=layer_target,
                begin_step=settings["begin_step"],
                end_step=pruning_end,
                power=settings["power"],
                frequency=settings["frequency"],
            )
            first = [layer for layer in dense.layers if layer.weights][0].name
            model = pruning.prune_low_magnitude(
                copy_of(dense), pruning_schedule=schedule,
                layer_schedules={first: None} if settings["keep_first_layer_dense"] else None,
            )
            timer = fine_tune(model, x_train, y_train, settings, seed, [pruning.UpdatePruningStep()])
            stripped = pruning.strip_pruning(model)
            entry = measure(stripped, f"pruned_{target:g}")
            entry.update(step_stats(timer))
            result["pruned"][f"{target:g}"] = entry
    # Timed again after the pruned runs and pooled, so a change in machine load
    # during the run weighs on both sides of the ratio.
    log(f"kopt seed {seed}: plain fine-tuning again (step-time reference)")
    again = fine_tune(copy_of(dense), x_train, y_train, settings, seed)
    plain_timer.extend(again)
    result["plain_finetune"] = {**step_stats(plain_timer), "keras_accuracy": plain_accuracy}
    result.update(framework="kopt", seed=seed, versions=versions(), wall_time_s=time.perf_counter() - started)
    return result


def versions():
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


def compile_model(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def copy_of(model):
    # Every fine-tune starts from its own copy of the dense weights, whatever the
    # wrapper does to the layers it is given.
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


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
        The timer; the first ``skip_epochs`` epochs are not timed (for a one-epoch
        fit pass 0 and read the median, which the first, tracing step does not move).
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


def keras_accuracy(model, images, labels):
    logits = model.predict(images, batch_size=_EVAL_BATCH, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def _export_and_score(model, mode, calibration_images, x_test, y_test, workdir, name):
    import tflite_export

    path = os.path.join(workdir, f"{name}_{mode}.tflite")
    representative = calibration_images if mode == "int8" else None
    tflite_export.convert(model, path, mode=mode, representative_dataset=representative)
    checked = tflite_export.verify(path, model, [(x_test, y_test)])
    sizes = tflite_export.file_sizes(path)
    result = {
        f"tflite_{mode}_accuracy": checked["tflite_accuracy"],
        f"tflite_{mode}_agreement": checked["agreement"],
        f"tflite_{mode}_bytes": sizes["bytes"],
        f"tflite_{mode}_gzip_bytes": sizes["gzip_bytes"],
        f"tflite_{mode}_path": path,
    }
    if mode == "float32":
        result["keras_accuracy"] = checked["keras_accuracy"]
    return result
