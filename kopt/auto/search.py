"""The accuracy-aware loop: compress in steps while accuracy stays within a budget.

Han et al. (2015) pruned, retrained and pruned again while accuracy held; this
automates that loop on top of :func:`kopt.auto.sensitivity` and
:func:`kopt.auto.allocate`:

0. Score the float model on the validation data (the reference), and its int8
   file, the least compression there is (step 0). Run the sensitivity analysis.
1. For each overall sparsity in ``steps``: allocate per-layer sparsities, prune
   the current model to them while fine-tuning, strip, convert to int8 and score
   the file on the validation data. Within ``max_accuracy_drop`` of the reference,
   it becomes the current model, and the best one if its file is the smallest.
2. Stop when a step breaks the budget, the target is reached, no further step
   fits the layers' safe levels, or the time budget would run out.

Every point tried is kept (``pareto``). The state is committed after each step
(:class:`kopt.auto.RunState`), so calling ``compress`` again with the same
arguments and ``output_dir`` after a kill resumes and ends with the same model;
a finished run returns its result at once. The test split is never used.

Example (a sketch; see ``kopt.auto.compress`` in the README)::

    result = kopt.auto.compress(model, (x_train, y_train), (x_val, y_val),
                                max_accuracy_drop=0.5, output_dir="auto_out")
    result.model.save("small.keras"); print(result.best, result.message)
"""

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from absl import logging

from kopt.auto import measure
from kopt.auto.allocate import allocate
from kopt.auto.allocate import uniform_allocation
from kopt.auto.data import as_arrays
from kopt.auto.fine_tune import prune_and_fine_tune
from kopt.auto.plots import plot_pareto
from kopt.auto.plots import plot_sensitivity
from kopt.auto.result import CompressResult
from kopt.auto.result import check_compress_arguments
from kopt.auto.result import run_key
from kopt.auto.sensitivity import DEFAULT_SPARSITIES
from kopt.auto.sensitivity import sensitivity
from kopt.auto.state import RunState
from kopt.pruning.report import kernel_sparsity
from kopt.training.batch_norm import DEFAULT_BATCHES
from tflite_export.atomic import atomic_output_path
from tflite_export.atomic import atomic_write_json
from tflite_export.cloning import copy_model
from tflite_export.recurrent import looped_layers

__all__ = ["DEFAULT_STEPS", "compress"]

DEFAULT_STEPS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95)


def compress(
    model: keras.Model,
    train_data: tuple[np.ndarray, np.ndarray] | Iterable[tuple[Any, Any]],
    val_data: tuple[np.ndarray, np.ndarray] | Iterable[tuple[Any, Any]],
    *,
    max_accuracy_drop: float = 0.5,
    target_sparsity: float | None = None,
    target_gzip_kb: float | None = None,
    steps: Sequence[float] = DEFAULT_STEPS,
    epochs: int = 2,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    batch_norm_batches: int = DEFAULT_BATCHES,
    criterion: str = "magnitude",
    allocation: str = "sensitivity",
    fragile_drop: float | None = None,
    sensitivity_sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    time_budget: float | None = None,
    output_dir: str | None = None,
    calibration_examples: int = 256,
    int8_calibration: str | None = None,
    seed: int = 0,
    verbose: int = 1,
    on_step: Callable[[dict[str, Any]], Any] | None = None,
) -> CompressResult:
    """Returns the smallest model found whose int8 accuracy stays within the budget.

    Args:
        model: A trained, plain Keras classifier (the float reference).
        train_data: ``(images, labels)`` arrays or a batched dataset, for
            fine-tuning and int8 calibration.
        val_data: Validation data carved from the training data (never the test
            split): every decision is made on it.
        max_accuracy_drop: Budget in points: a model is kept only if its int8
            file's validation accuracy is at least the float model's minus this.
        target_sparsity: Stop once the kept model reaches this overall sparsity.
        target_gzip_kb: Or stop once its gzipped int8 file is this small (KiB).
        steps: Increasing overall sparsities to try, in ``(0, 1)``.
        epochs: Fine-tuning epochs per step.
        batch_size: Fine-tuning batch size.
        learning_rate: Fine-tuning Adam learning rate.
        batch_norm_batches: Batches over which each fine-tuned candidate's
            BatchNormalization statistics are re-estimated before it is measured
            (:func:`kopt.training.reestimate_batch_norm`); 0 keeps its moving averages.
        criterion: ``"magnitude"`` or ``"random"`` (a baseline).
        allocation: ``"sensitivity"`` (per-layer, :func:`kopt.auto.allocate`) or
            ``"uniform"`` (every layer at the step's sparsity).
        fragile_drop: Passed to :func:`kopt.auto.allocate`.
        sensitivity_sparsities: Levels of the sensitivity analysis.
        time_budget: Seconds, over all resumptions; no step starts that would
            not finish in time.
        output_dir: Where state, models, report and figures go; default a new
            temporary directory. Reuse it to resume.
        calibration_examples: Training images that calibrate int8 conversion.
        int8_calibration: Who calibrates the int8 files: ``"converter"`` (the
            TFLite converter's calibrator on the float model), ``"kopt"`` (the
            model made quantization-aware and calibrated, as
            :func:`kopt.quantization.quantize_calibrated` does, so the parts
            TFLite has no int8 kernel for stay float) or ``None``: ``"kopt"``
            for a model with a recurrent loop, whose loop the converter would
            unroll and force to int8, the converter otherwise (see
            :func:`kopt.auto.measure.int8_calibration`).
        seed: Fixes the fine-tuning order of every step.
        verbose: 1 logs each step and shows progress bars; 0 is quiet.
        on_step: Called with each new point after its state is committed.

    Returns:
        A :class:`kopt.auto.CompressResult`. When no model meets the budget,
        ``met_budget`` is false, ``message`` says so and ``model`` is the most
        accurate model tried.

    Raises:
        ValueError: For a bad argument, a time budget too small to fine-tune
            once, or an ``output_dir`` holding another search, before any training.
    """
    settings = check_compress_arguments(locals())
    settings["int8_calibration"] = measure.int8_calibration(model, int8_calibration)
    if int8_calibration is None and settings["int8_calibration"] == "kopt":
        logging.info(
            "kopt.auto: %s has recurrent layer(s) %s that convert to a loop, which the converter's calibrator cannot "
            "run; its int8 files are calibrated by kopt (the loop stays float). Pass int8_calibration='converter' "
            "for the converter's unrolled, fully integer files.",
            model.name,
            ", ".join(looped_layers(model)[:5]),
        )
    x_fit, y_fit = as_arrays(train_data, name="train_data")
    x_val, y_val = as_arrays(val_data, name="val_data")
    output_dir = output_dir or tempfile.mkdtemp(prefix="kopt-auto-")
    state = RunState(output_dir)
    key = run_key(model, (x_fit, y_fit, x_val, y_val), settings)
    data = state.load(key)
    if data is not None and data.get("finished"):
        return CompressResult.from_state(state, data)
    started = time.perf_counter()
    spent_before = data["elapsed_s"] if data else 0.0

    def elapsed():
        return spent_before + time.perf_counter() - started

    calibration = x_fit[:calibration_examples]
    estimate = None
    if time_budget is not None:
        estimate = _estimate_step_seconds(model, x_fit, y_fit, batch_size, epochs)
        if data is None and estimate > time_budget:
            raise ValueError(
                f"time_budget={time_budget:g} s is too small to fine-tune once: one step of {epochs} epoch(s) "
                f"takes about {estimate:.0f} s here. Received: time_budget={time_budget:g}"
            )

    def measure_point(candidate, step, level):
        point = measure.int8_point(
            candidate,
            calibration,
            x_val,
            y_val,
            path=state.tflite_path(step),
            calibrated_by=settings["int8_calibration"],
        )
        point.update(
            step=step,
            target_sparsity=level,
            sparsity=kernel_sparsity(candidate, prunable_only=True),
            layer_sparsities=measure.layer_sparsities(candidate),
            keras_accuracy=measure.accuracy(candidate, x_val, y_val),
        )
        point["drop"] = data["float_accuracy"] - point["accuracy"]
        point["within_budget"] = point["drop"] <= max_accuracy_drop + 1e-9
        return point

    if data is None:
        data = {"key": key, "settings": settings}
        data["float_accuracy"] = measure.accuracy(model, x_val, y_val)
        mark = time.perf_counter()
        point = measure_point(model, 0, 0.0)
        point["seconds"] = time.perf_counter() - mark
        data.update(points=[point], current={"step": 0}, best={"step": 0}, stop_reason=None, message=None)
        state.save_model(model, 0)
        if not point["within_budget"]:
            data["current"] = None
            _stop(data, "budget", _unmet_message(point, max_accuracy_drop))
        elif _target_reached(point, target_sparsity, target_gzip_kb):
            _stop(data, "target", "the unpruned int8 model already reaches the target")
        data["elapsed_s"] = elapsed()
        state.commit(data)
        _log(verbose, point)
        if on_step is not None:
            on_step(point)

    table = sensitivity(
        model,
        (x_val, y_val),
        sparsities=sensitivity_sparsities,
        criterion=criterion,
        cache_path=os.path.join(output_dir, "sensitivity.json"),
        verbose=verbose,
    )
    plot_sensitivity(table, os.path.join(output_dir, "sensitivity.png"))
    done = {p["target_sparsity"] for p in data["points"]}
    for level in steps:
        if data.get("stop_reason"):
            break
        if level in done or level <= data["points"][data["current"]["step"]]["target_sparsity"]:
            continue
        last = data["points"][-1].get("seconds") if len(data["points"]) > 1 else estimate
        if time_budget is not None and elapsed() + (last or 0.0) > time_budget:
            _stop(
                data, "time", f"stopped before sparsity {level:g}: the time budget of {time_budget:g} s would run out"
            )
            break
        plan = (
            uniform_allocation(table, level)
            if allocation == "uniform"
            else allocate(table, target_sparsity=level, fragile_drop=fragile_drop)
        )
        if plan.capped:
            _stop(data, "safe_levels", f"stopped before sparsity {level:g}: {plan.capped}")
            break
        mark = time.perf_counter()
        step = len(data["points"])
        candidate = prune_and_fine_tune(
            state.load_model(data["current"]["step"]),
            plan.sparsities,
            (x_fit, y_fit),
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            batch_norm_batches=batch_norm_batches,
            criterion=criterion,
            seed=seed * 1000 + step,
            verbose=0,
        )
        point = measure_point(candidate, step, level)
        point.update(allocation=plan.sparsities, held_back=plan.held_back, seconds=time.perf_counter() - mark)
        data["points"].append(point)
        if point["within_budget"]:
            state.save_model(candidate, step)
            data["current"] = {"step": step}
            if point["gzip_bytes"] <= data["points"][data["best"]["step"]]["gzip_bytes"]:
                data["best"] = {"step": step}
            if _target_reached(point, target_sparsity, target_gzip_kb):
                _stop(data, "target", f"reached the target at step {step} (sparsity {point['sparsity']:.3f})")
        else:
            _stop(
                data,
                "budget",
                f"step {step} (sparsity {level:g}) lost {point['drop']:.2f} points, "
                f"more than max_accuracy_drop={max_accuracy_drop:g}",
            )
        data["elapsed_s"] = elapsed()
        state.commit(data)
        _log(verbose, point)
        if on_step is not None:
            on_step(point)
    if not data.get("stop_reason"):
        _stop(data, "steps", "tried every step within the budget")
    return _finish(state, data, table, max_accuracy_drop, elapsed())


def _finish(state, data, table, max_accuracy_drop, seconds):
    best = data["points"][data["best"]["step"]]
    files = {
        "best_keras": os.path.join(state.directory, "best.keras"),
        "best_tflite": os.path.join(state.directory, "best.tflite"),
        "report": os.path.join(state.directory, "report.json"),
        "pareto_png": os.path.join(state.directory, "pareto.png"),
        "sensitivity_png": os.path.join(state.directory, "sensitivity.png"),
    }
    with atomic_output_path(files["best_keras"]) as tmp:
        shutil.copyfile(state.model_path(best["step"]), tmp)
    with atomic_output_path(files["best_tflite"]) as tmp:
        shutil.copyfile(state.tflite_path(best["step"]), tmp)
    plot_pareto(data["points"], data["float_accuracy"], max_accuracy_drop, files["pareto_png"], best_step=best["step"])
    data.update(finished=True, elapsed_s=seconds, files=files, sensitivity=table.to_dict())
    data["met_budget"] = bool(best["within_budget"])
    state.commit(data)
    result = CompressResult.from_state(state, data)
    atomic_write_json(files["report"], result.to_dict())
    return result


def _stop(data, reason, message):
    data["stop_reason"] = reason
    data["message"] = message


def _unmet_message(point, max_accuracy_drop):
    return (
        f"the budget cannot be met: even the least compression (the unpruned model as int8) loses "
        f"{point['drop']:.2f} points, more than max_accuracy_drop={max_accuracy_drop:g}; "
        "returning it as the best model found"
    )


def _target_reached(point, target_sparsity, target_gzip_kb):
    if target_sparsity is not None and point["sparsity"] >= target_sparsity - 1e-3:
        return True
    return target_gzip_kb is not None and point["gzip_bytes"] <= target_gzip_kb * 1024


def _estimate_step_seconds(model, images, labels, batch_size, epochs):
    """Times a few training batches on a copy of the model; returns seconds per step."""
    copy = copy_model(model)
    copy.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    durations = []
    for index in range(3):
        start = time.perf_counter()
        copy.train_on_batch(
            images[index * batch_size : (index + 1) * batch_size], labels[index * batch_size : (index + 1) * batch_size]
        )
        durations.append(time.perf_counter() - start)
    per_batch = sum(durations[1:]) / 2  # The first call traces.
    return per_batch * math.ceil(len(images) / batch_size) * epochs


def _log(verbose, point):
    if verbose:
        logging.info(
            "kopt.auto step %d: sparsity %.3f, int8 accuracy %.2f%% (drop %.2f), %d bytes gzipped, %s",
            point["step"],
            point["sparsity"],
            point["accuracy"],
            point["drop"],
            point["gzip_bytes"],
            "within budget" if point["within_budget"] else "breaks the budget",
        )
