"""Train a classifier with your own model.fit, then export and verify it as TFLite.

The path for users who write their own training instead of running kopt-optimize:
kopt's data loader and built-in model, plain Keras training, tflite_export for the
file and its check against the Keras model.

    python examples/train_and_export.py --epochs=10 --output=/tmp/digits.tflite
    python examples/train_and_export.py --optimizer=nesterov --learning_rate=0.05 --lr_schedule=cosine \
        --warmup_epochs=1 --mixed_precision=mixed_bfloat16

The training flags (--optimizer, --lr_schedule, --mixed_precision, ...) are
kopt.training's, the same as kopt-optimize's; each names a Keras built-in.

Expected on the default digits data (10 epochs, seed 0, 2 CPU cores, about 15 s):
test accuracy about 0.96 for both the Keras model and the float32 .tflite file,
agreement 1.0, a file of about 160 KiB.
"""

import keras
from absl import app
from absl import flags

import tflite_export
from kopt import training
from kopt.data import load_dataset
from kopt.models import small_cnn

training.define_flags()

_DATASET = flags.DEFINE_string("dataset", "digits", "Dataset name, as kopt.data.load_dataset takes it.")
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Training epochs.", lower_bound=1)
_MODE = flags.DEFINE_enum("mode", "float32", list(tflite_export.MODES), "TFLite conversion mode.")
_OUTPUT = flags.DEFINE_string("output", "model.tflite", "Path of the .tflite file to write.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0)
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Peak learning rate.")


def main(argv):
    del argv
    config = training.config_from_flags(epochs=_EPOCHS.value, learning_rate=_LEARNING_RATE.value)
    training.make_reproducible(_SEED.value, deterministic=flags.FLAGS.deterministic)
    train, test, info = load_dataset(_DATASET.value, seed=_SEED.value)
    validation = None
    if config.needs_validation:  # plateau and early stopping read a validation loss, never the test one
        train, validation = training.split_validation(train, 0.1, batch_size=64, seed=_SEED.value)
    optimizer, callbacks = training.training_objects(config, steps_per_epoch=int(train.cardinality()))
    with training.precision_policy(flags.FLAGS.mixed_precision):
        model = small_cnn(info.input_shape, info.num_classes)
        model.compile(
            optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
        )
        model.fit(train, epochs=config.epochs, validation_data=validation, callbacks=callbacks, verbose=2)
    model = training.to_float32(model)  # the .tflite file is float32 (or integer) whatever the training precision
    path = tflite_export.convert(
        model,
        _OUTPUT.value,
        mode=_MODE.value,
        representative_dataset=train if _MODE.value in ("int8", "int16x8") else None,
    )
    check = tflite_export.verify(path, model, test)
    sizes = tflite_export.file_sizes(path)
    print(
        f"keras accuracy {check['keras_accuracy']:.4f}, tflite accuracy {check['tflite_accuracy']:.4f}, "
        f"agreement {check['agreement']:.4f}, {sizes['bytes']:,} bytes ({sizes['gzip_bytes']:,} gzipped): {path}"
    )


if __name__ == "__main__":
    app.run(main)
