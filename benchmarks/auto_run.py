"""One seed of the accuracy-aware compression benchmark."""

import os
import tempfile
import time

import keras
import numpy as np

from benchmarks.core.data import load_arrays
from benchmarks.kopt_side import build_model
from kopt import auto
from kopt import pruning
from kopt.auto import measure


def _score(model, calibration, x_val, y_val, x_test, y_test, workdir, name):
    """Keras and int8-file accuracies (percent) on validation and test, and the file's sizes."""
    path = os.path.join(workdir, f"{name}.tflite")
    val = measure.int8_point(model, calibration, x_val, y_val, path=path)
    import tflite_export

    test_outputs = tflite_export.predict(path, x_test)
    return {
        "keras_test": measure.accuracy(model, x_test, y_test),
        "int8_test": float(np.mean(np.argmax(test_outputs, -1) == y_test) * 100),
        "keras_val": measure.accuracy(model, x_val, y_val),
        "int8_val": val["accuracy"],
        "gzip_bytes": val["gzip_bytes"],
        "bytes": val["bytes"],
        "sparsity": pruning.kernel_sparsity(model, prunable_only=True),
        "layer_sparsities": measure.layer_sparsities(model),
    }


def run(data, seed, settings, log=print):
    """Runs every row for ``seed``; returns a JSON-ready dict."""
    x_train, y_train, x_test, y_test = load_arrays(data, settings.max_train_examples)
    (x_fit, y_fit), (x_val, y_val) = auto.split_validation((x_train, y_train), settings.validation_split, seed=seed)
    calibration = x_fit[: settings.calibration_examples]
    workdir = tempfile.mkdtemp(prefix=f"kopt-auto-bench-{seed}-")
    result = {"seed": seed}

    def score(model, name):
        return _score(model, calibration, x_val, y_val, x_test, y_test, workdir, name)

    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    dense = build_model()
    dense.compile(
        keras.optimizers.Adam(settings.learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    dense.fit(x_fit, y_fit, batch_size=settings.dense_batch_size, epochs=settings.dense_epochs, verbose=0)
    result["float"] = {**score(dense, "float"), "train_s": time.perf_counter() - started}
    log(f"seed {seed}: float {result['float']['keras_test']:.2f}%")

    mark = time.perf_counter()
    table = auto.sensitivity(dense, (x_val, y_val), sparsities=settings.sensitivity_levels, verbose=0)
    result["sensitivity"] = {**table.to_dict(), "seconds": time.perf_counter() - mark}
    names = table.layers

    def fine_tuned(sparsities, criterion="magnitude"):
        mark = time.perf_counter()
        model = auto.prune_and_fine_tune(
            dense,
            sparsities,
            (x_fit, y_fit),
            epochs=settings.finetune_epochs,
            batch_size=settings.finetune_batch_size,
            learning_rate=settings.learning_rate,
            criterion=criterion,
            seed=seed,
        )
        return model, time.perf_counter() - mark

    result["pruned"] = {}
    for target in settings.sparsities:
        rows = {}
        plan = auto.allocate(table, target_sparsity=target, fragile_drop=settings.fragile_drop)
        for kind, sparsities, criterion in (
            ("uniform", {name: target for name in names}, "magnitude"),
            ("allocated", plan.sparsities, "magnitude"),
            ("random", {name: target for name in names}, "random"),
        ):
            model, seconds = fine_tuned(sparsities, criterion)
            rows[kind] = {**score(model, f"{kind}_{target:g}"), "finetune_s": seconds}
            log(f"seed {seed}: {kind} {target:.0%}: test {rows[kind]['keras_test']:.2f}%")
        rows["allocation"] = plan.to_dict()
        result["pruned"][f"{target:g}"] = rows

    result["structured"] = {}
    taylor = pruning.taylor_importance(dense, (x_fit, y_fit), batch_size=128, max_batches=16)
    conv = next(layer.name for layer in dense.layers if isinstance(layer, keras.layers.Conv2D))
    for fraction in settings.structured_fractions:
        rows = {}
        for kind, importance in (("l1", "l1"), ("taylor", taylor)):
            smaller = pruning.prune_channels(dense, {conv: fraction}, importance=importance)
            before = measure.accuracy(smaller, x_test, y_test)
            keras.utils.set_random_seed(seed)
            smaller.compile(
                keras.optimizers.Adam(settings.learning_rate),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
            order = np.random.default_rng(seed).permutation(len(x_fit))
            smaller.fit(
                x_fit[order],
                y_fit[order],
                batch_size=settings.finetune_batch_size,
                epochs=settings.finetune_epochs,
                verbose=0,
            )
            rows[kind] = {
                "before_finetune_test": before,
                "keras_test": measure.accuracy(smaller, x_test, y_test),
                "params": int(smaller.count_params()),
            }
        result["structured"][f"{fraction:g}"] = rows
        log(
            f"seed {seed}: structured {fraction:.0%}: L1 {rows['l1']['keras_test']:.2f}, "
            f"Taylor {rows['taylor']['keras_test']:.2f}"
        )

    mark = time.perf_counter()
    found = auto.compress(
        dense,
        (x_fit, y_fit),
        (x_val, y_val),
        max_accuracy_drop=settings.max_accuracy_drop,
        steps=settings.auto_steps,
        epochs=settings.finetune_epochs,
        batch_size=settings.finetune_batch_size,
        learning_rate=settings.learning_rate,
        fragile_drop=settings.fragile_drop,
        sensitivity_sparsities=settings.sensitivity_levels,
        calibration_examples=settings.calibration_examples,
        output_dir=os.path.join(workdir, "auto"),
        seed=seed,
        verbose=0,
    )
    wall = time.perf_counter() - mark
    import tflite_export

    outputs = tflite_export.predict(found.files["best_tflite"], x_test)
    result["auto"] = {
        "int8_test": float(np.mean(np.argmax(outputs, -1) == y_test) * 100),
        "keras_test": measure.accuracy(found.model, x_test, y_test),
        "gzip_bytes": found.best["gzip_bytes"],
        "sparsity": found.best["sparsity"],
        "best_step": found.best["step"],
        "met_budget": found.met_budget,
        "stop_reason": found.stop_reason,
        "message": found.message,
        "wall_s": wall,
        "pareto": [{k: v for k, v in p.items() if k != "layer_sparsities"} for p in found.pareto],
    }
    log(
        f"seed {seed}: auto kept step {found.best['step']} ({found.best['sparsity']:.3f}), "
        f"int8 test {result['auto']['int8_test']:.2f}%, {found.best['gzip_bytes']} bytes, {wall:.0f} s"
    )
    result["wall_time_s"] = time.perf_counter() - started
    return result
