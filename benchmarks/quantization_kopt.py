"""kopt's side of the quantization benchmark: the same steps as the tfmot worker, in Keras 3.

For one seed: train the float model (``settings["model"]``, built by
``quantization_models``, trained with ``kopt_side.TRAINER``), export it as
float32 and PTQ int8 TFLite with ``tflite_export``, fine-tune one copy without quantization (the step-time
reference, timed before and after QAT) and one made with
``kopt.quantization.quantize_model``, export the QAT model as int8 TFLite and
save each Keras model's top-1 predictions on the test set.

The result has the same keys as ``tfmot_quantization_worker.py`` writes; the
benchmark scores, sizes and times both sides' files with the same code.
"""

import os
import time

import keras

from benchmarks import quantization_models
from benchmarks.core.data import load_arrays
from benchmarks.core.scoring import save_top1
from benchmarks.core.training import step_stats
from benchmarks.kopt_side import TRAINER
from benchmarks.kopt_side import keras_accuracy
from benchmarks.kopt_side import versions

__all__ = ["quantization_available", "run"]


def quantization_available():
    """Returns ``None`` if kopt.quantization has ``quantize_model``, else the reason."""
    try:
        from kopt.quantization import quantize_model  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import failure means kopt cannot quantize.
        return f"kopt.quantization.quantize_model does not import ({type(err).__name__}: {err})"
    return None


def run(data, seed, settings, workdir, log=print):
    """Runs kopt's side for one seed.

    Args:
        data: Path of the MNIST-layout ``.npz`` archive.
        seed: Seed of initialization and shuffling.
        settings: ``QuantizationSettings.as_dict()``.
        workdir: Folder for the ``.tflite`` and ``.npy`` files.
        log: Called with one line of progress at a time.

    Returns:
        ``{"files": {"float32", "ptq_int8", "qat_int8"}: path, "keras_top1":
        {"float", "qat"}: path, "plain_finetune": step stats and Keras accuracy,
        "qat": step stats, "framework", "seed", "versions", "wall_time_s"}``.

    Raises:
        RuntimeError: If ``kopt.quantization.quantize_model`` cannot be imported.
    """
    import tflite_export

    reason = quantization_available()
    if reason:
        raise RuntimeError(reason)
    from kopt.quantization import quantize_model

    x_train, y_train, x_test, y_test = load_arrays(data, settings.get("max_train_examples"))
    calibration_images = x_train[: settings["representative_examples"]]
    os.makedirs(workdir, exist_ok=True)
    started = time.perf_counter()

    def fine_tune(model):
        return TRAINER.fine_tune(model, x_train, y_train, settings, seed, stage="qat")

    log(f"kopt seed {seed}: float training of {settings['model']}, {settings['dense_epochs']} epochs")
    dense = TRAINER.train_dense(
        x_train, y_train, settings, seed, lambda: quantization_models.build(settings["model"], keras)
    )
    files = {
        "float32": tflite_export.convert(dense, os.path.join(workdir, "float32.tflite"), mode="float32"),
        "ptq_int8": tflite_export.convert(
            dense, os.path.join(workdir, "ptq_int8.tflite"), mode="int8", representative_dataset=calibration_images
        ),
    }
    predictions = {"float": save_top1(dense, x_test, os.path.join(workdir, "float_top1.npy"))}

    log(f"kopt seed {seed}: plain fine-tuning (step-time reference)")
    plain = TRAINER.copy_of(dense)
    plain_timer = fine_tune(plain)
    plain_accuracy = keras_accuracy(plain, x_test, y_test)

    log(f"kopt seed {seed}: quantization-aware fine-tuning")
    qat = quantize_model(dense)
    qat_timer = fine_tune(qat)
    # As the contract of tflite_export.convert has it for QAT models: the ranges
    # come from the model, no representative data.
    files["qat_int8"] = tflite_export.convert(qat, os.path.join(workdir, "qat_int8.tflite"), mode="int8")
    predictions["qat"] = save_top1(qat, x_test, os.path.join(workdir, "qat_top1.npy"))

    # Timed again after QAT and pooled, so a change in machine load during the
    # run weighs on both sides of the ratio.
    log(f"kopt seed {seed}: plain fine-tuning again (step-time reference)")
    plain_timer.extend(fine_tune(TRAINER.copy_of(dense)))
    return {
        "files": files,
        "keras_top1": predictions,
        "plain_finetune": {**step_stats(plain_timer), "keras_accuracy": plain_accuracy},
        "qat": step_stats(qat_timer),
        "framework": "kopt",
        "seed": seed,
        "versions": versions(),
        "wall_time_s": time.perf_counter() - started,
    }
