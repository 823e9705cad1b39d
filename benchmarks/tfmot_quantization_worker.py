"""tfmot's side of the quantization benchmark; runs inside ``benchmarks/.venv-tfmot``.

It runs under tf_keras (``TF_USE_LEGACY_KERAS=1``), so it imports nothing of kopt;
the model comes from its sibling ``quantization_models.py`` (kopt's side builds
it from the same file), data, float training, timed fine-tuning and scoring
helpers from ``core`` and the conversion and command line from its sibling
``tfmot_pruning_worker.py`` (this script's folder is first on ``sys.path``).
Every setting comes from ``--settings`` (JSON written by
``benchmarks/quantization.py``).

For one seed it trains the float model, exports it as float32 and PTQ int8
TFLite, fine-tunes one copy without quantization (the step-time reference, timed
before and after QAT) and one with ``tfmot.quantization.keras.quantize_model``,
exports the QAT model as int8 TFLite the way tfmot's QAT guide does
(``optimizations=[DEFAULT]``, no representative data) and saves each Keras
model's top-1 predictions on the test set. Scoring, sizing and timing the files
is left to the parent, which treats kopt's files with the same code.

Usage::

    TF_USE_LEGACY_KERAS=1 benchmarks/.venv-tfmot/bin/python \
        benchmarks/tfmot_quantization_worker.py --data ../shared/data/mnist-22k.npz \
        --seed 0 --settings '{...}' --output /tmp/tfmot_seed0.json
"""

import os

# Must be set before TensorFlow is imported; tfmot only works with tf_keras.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import quantization_models  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tfmot_pruning_worker as base  # noqa: E402
from core.data import load_arrays  # noqa: E402
from core.scoring import PREDICT_BATCH  # noqa: E402
from core.scoring import save_top1  # noqa: E402
from core.training import step_stats  # noqa: E402

TRAINER = base.TRAINER


def qat_to_tflite(model):
    """tfmot's documented conversion of a QAT model: ranges come from the model."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def run(data, seed, settings, workdir, log):
    """Runs tfmot's side for one seed; ``settings`` is ``QuantizationSettings.as_dict()``."""
    x_train, y_train, x_test, y_test = load_arrays(data, settings.get("max_train_examples"))
    calibration_images = x_train[: settings["representative_examples"]]

    def write(name, flatbuffer):
        path = os.path.join(workdir, f"{name}.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        return path

    def fine_tune(model):
        return TRAINER.fine_tune(model, x_train, y_train, settings, seed, stage="qat")

    log(f"tfmot seed {seed}: float training of {settings['model']}, {settings['dense_epochs']} epochs")
    dense = TRAINER.train_dense(
        x_train, y_train, settings, seed, lambda: quantization_models.build(settings["model"], base.keras)
    )
    files = {
        "float32": write("float32", base.to_tflite(dense, "float32", calibration_images)),
        "ptq_int8": write("ptq_int8", base.to_tflite(dense, "int8", calibration_images)),
    }
    predictions = {"float": save_top1(dense, x_test, os.path.join(workdir, "float_top1.npy"))}

    log(f"tfmot seed {seed}: plain fine-tuning (step-time reference)")
    plain = TRAINER.copy_of(dense)
    plain_timer = fine_tune(plain)
    _, plain_accuracy = plain.evaluate(x_test, y_test, batch_size=PREDICT_BATCH, verbose=0)

    log(f"tfmot seed {seed}: quantization-aware fine-tuning")
    qat = tfmot.quantization.keras.quantize_model(TRAINER.copy_of(dense))
    qat_timer = fine_tune(qat)
    files["qat_int8"] = write("qat_int8", qat_to_tflite(qat))
    predictions["qat"] = save_top1(qat, x_test, os.path.join(workdir, "qat_top1.npy"))

    # Timed again after QAT and pooled, so a change in machine load during the
    # run weighs on both sides of the ratio.
    log(f"tfmot seed {seed}: plain fine-tuning again (step-time reference)")
    plain_timer.extend(fine_tune(TRAINER.copy_of(dense)))
    return {
        "files": files,
        "keras_top1": predictions,
        "plain_finetune": {**step_stats(plain_timer), "keras_accuracy": float(plain_accuracy)},
        "qat": step_stats(qat_timer),
    }


if __name__ == "__main__":
    base.main(run_seed=run, description=__doc__.splitlines()[0])
