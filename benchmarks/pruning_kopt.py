"""kopt's side of the pruning benchmark: the same steps as the tfmot worker, in Keras 3.

For one seed: train the dense model of tfmot's pruning example, fine-tune a copy
without pruning (the step-time reference), fine-tune a copy per target sparsity
with ``kopt.pruning.prune_low_magnitude``, strip, export float32 and int8 TFLite
with ``tflite_export`` and score the files with the LiteRT interpreter.

The result has the same keys as ``tfmot_pruning_worker.py`` writes, so the report
treats both sides alike.
"""

import os
import time

from benchmarks.core.data import load_arrays
from benchmarks.core.training import end_step
from benchmarks.core.training import step_stats
from benchmarks.kopt_side import TRAINER
from benchmarks.kopt_side import build_model
from benchmarks.kopt_side import keras_accuracy
from benchmarks.kopt_side import versions

__all__ = ["build_model", "pruning_available", "run"]


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


def run(data, seed, settings, workdir, log=print):
    """Runs kopt's side for one seed; ``settings`` is ``PruningSettings.as_dict()``."""
    from kopt.pipeline import kernel_sparsity

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
    dense = TRAINER.train_dense(x_train, y_train, settings, seed, build_model)
    result = {"dense": measure(dense, "dense")}

    log(f"kopt seed {seed}: plain fine-tuning (step-time reference)")
    plain = TRAINER.copy_of(dense)
    plain_timer = TRAINER.fine_tune(plain, x_train, y_train, settings, seed)
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
                TRAINER.copy_of(dense),
                pruning_schedule=schedule,
                layer_schedules={first: None} if settings["keep_first_layer_dense"] else None,
            )
            timer = TRAINER.fine_tune(model, x_train, y_train, settings, seed, [pruning.UpdatePruningStep()])
            stripped = pruning.strip_pruning(model)
            entry = measure(stripped, f"pruned_{target:g}")
            entry.update(step_stats(timer))
            result["pruned"][f"{target:g}"] = entry
    # Timed again after the pruned runs and pooled, so a change in machine load
    # during the run weighs on both sides of the ratio.
    log(f"kopt seed {seed}: plain fine-tuning again (step-time reference)")
    again = TRAINER.fine_tune(TRAINER.copy_of(dense), x_train, y_train, settings, seed)
    plain_timer.extend(again)
    result["plain_finetune"] = {**step_stats(plain_timer), "keras_accuracy": plain_accuracy}
    result.update(framework="kopt", seed=seed, versions=versions(), wall_time_s=time.perf_counter() - started)
    return result


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
