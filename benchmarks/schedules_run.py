"""One seed of the schedules benchmark: a float model, then 80% pruning fine-tuned per schedule.

Every schedule's fine-tune starts from the same trained float weights and sees
the examples in the same order; only the learning-rate schedule differs. It is
kopt-optimize's own path: kopt.pipeline's data loading (with the validation
split carved from training), train_classifier and the ``prune`` stage.
"""

import os
import tempfile
import time

import keras
import numpy as np

from kopt.models import get_model
from kopt.pipeline import Recipe
from kopt.pipeline import StageContext
from kopt.pipeline import get_technique
from kopt.pipeline import kernel_sparsity
from kopt.pipeline.classifier_training import train_classifier
from kopt.pipeline.execution import load_data
from kopt.training import make_reproducible


def subset_npz(data, max_train_examples, workdir):
    """``data`` itself, or an npz of its first ``max_train_examples`` training examples."""
    if max_train_examples is None:
        return data
    path = os.path.join(workdir, f"subset_{max_train_examples}.npz")
    with np.load(data) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["x_train"] = arrays["x_train"][:max_train_examples]
    arrays["y_train"] = arrays["y_train"][:max_train_examples]
    np.savez(path, **arrays)
    return path


def accuracy(model, dataset):
    """Top-1 accuracy of ``model`` on a batched ``(images, labels)`` dataset, in percent."""
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in dataset])
    predictions = np.argmax(model.predict(dataset.map(lambda images, _: images), verbose=0), axis=-1)
    return float(np.mean(predictions == labels) * 100)


def run(data, seed, settings, log=print, workdir=None):
    """Trains the float model for ``seed`` and fine-tunes it once per schedule.

    Returns:
        ``{"float": {...}, "<schedule>": {"test_accuracy", "val_accuracy",
        "sparsity", "final_learning_rate", "train_s"}, ...}``; accuracies in percent.
    """
    workdir = workdir or tempfile.mkdtemp(prefix="kopt-schedules-")
    data = subset_npz(data, settings.max_train_examples, workdir)
    base = Recipe(
        dataset=f"npz:{data}",
        model=settings.model,
        epochs=settings.float_epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        validation_split=settings.validation_split,
        seed=seed,
        export_dir=workdir,
    )
    make_reproducible(seed)
    train, validation, test, info = load_data(base)
    started = time.perf_counter()
    model = get_model(base.model, info.input_shape, info.num_classes)
    train_classifier(model, train, config=base.training_config(), validation=validation, verbose=0)
    weights = model.get_weights()
    result = {
        "float": {
            "test_accuracy": accuracy(model, test),
            "val_accuracy": accuracy(model, validation),
            "train_s": time.perf_counter() - started,
        }
    }
    log(f"seed {seed}: float {result['float']}")
    prune = get_technique("prune")
    for schedule in settings.schedules:
        recipe = Recipe(**{**base.__dict__, "lr_schedule": schedule})
        params = {
            "target_sparsity": settings.sparsity,
            "epochs": settings.finetune_epochs,
            "learning_rate": settings.finetune_learning_rate,
        }
        make_reproducible(seed + 1000)  # the same example order for every schedule
        train, validation, test, info = load_data(recipe)
        copy = get_model(base.model, info.input_shape, info.num_classes)
        copy.set_weights(weights)
        context = StageContext(
            recipe=recipe, train=train, test=test, info=info, export_dir=workdir, validation=validation
        )
        started = time.perf_counter()
        pruned = prune.apply(copy, context, params)
        final_rate = float(keras.ops.convert_to_numpy(pruned.optimizer.learning_rate))
        stripped = prune.strip(pruned)
        result[schedule] = {
            "test_accuracy": accuracy(stripped, test),
            "val_accuracy": accuracy(stripped, validation),
            "sparsity": kernel_sparsity(stripped),
            "final_learning_rate": final_rate,
            "train_s": time.perf_counter() - started,
        }
        log(f"seed {seed}: {schedule} {result[schedule]}")
    return result
