"""Keras model -> ``.tflite`` file, through TensorFlow's TFLite converter.

The model is traced as a ``tf.function`` with a dynamic batch dimension, so the file
can be resized to any batch in the interpreter (or, with ``batch_size=N``, with a
fixed one: static shapes, no shape arithmetic ops, what microcontroller runtimes
want), and converted with builtin TFLite
ops only: a model that would need Flex (TensorFlow) ops fails with the converter's
message instead of silently producing a file phones cannot run.

Models holding a library's training layers are prepared first through the hooks
those libraries register (:mod:`tflite_export.export_hooks`): kopt's pruning and
clustering wrappers are stripped (the zeros and shared values baked in), and a
quantization-aware model (``kopt.quantization``) is traced with its fake
quantization lowered to TensorFlow's ``FakeQuant`` ops, from which the converter
takes every tensor's trained scale and zero point. Such a model converts in an
integer mode without a representative dataset.
"""

import contextlib
import os
import re
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from tflite_export import calibration
from tflite_export import export_hooks
from tflite_export import fused_lstm
from tflite_export import inference
from tflite_export import plugins
from tflite_export import recurrent
from tflite_export.atomic import atomic_write_bytes
from tflite_export.explicit_padding import explicit_depthwise_padding
from tflite_export.flatbuffer import strip_strings as strip_file_strings
from tflite_export.grid_weights import int8_grid_weights
from tflite_export.sparse_inference import densified_problem
from tflite_export.time_folding import folded_time_distributed

MODES = ("float32", "float16", "dynamic", "int8", "int16x8")
_INTEGER_MODES = ("int8", "int16x8")
_IO_TYPES = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8, "int16": tf.int16}


class ConversionError(RuntimeError):
    """The TFLite converter could not lower the model; the message says why."""


def convert(
    model_or_path: keras.Model | str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    mode: str = "float32",
    representative_dataset: np.ndarray | list[np.ndarray] | dict[str, np.ndarray] | tf.data.Dataset | None = None,
    inference_input_type: str = "float32",
    inference_output_type: str = "float32",
    allow_flex_ops: bool = False,
    batch_size: int | str | None = "auto",
    strip_strings: bool = False,
    fuse_lstm: bool = False,
    sparse_weights: bool = False,
    fold_time_distributed: bool = True,
    grid_weights_int8: bool = True,
) -> str:
    """Converts a Keras model to a ``.tflite`` file, written atomically.

    Args:
        model_or_path: A ``keras.Model`` or a path to a ``.keras`` file.
        output_path: Destination; must end in ``.tflite``. Written only once the
            conversion succeeded, so an earlier file of that name stays intact on failure.
        mode: ``"float32"``; ``"float16"`` (weights stored as float16);
            ``"dynamic"`` (int8 weights, float activations); ``"int8"`` (full integer,
            needs ``representative_dataset`` unless the model is quantization-aware);
            ``"int16x8"`` (int16 activations, int8 weights, likewise).
        representative_dataset: For calibration in the integer modes: a
            ``tf.data.Dataset`` of ``(inputs, labels)`` or ``inputs`` batches, or a
            NumPy array of inputs. Each example is cast to its model input's dtype,
            so integer token ids calibrate an ``int32`` input; a model with several
            inputs takes batches that are dicts by input name or lists in the
            model's input order. Up to 256 examples are used.
        inference_input_type: ``"float32"``, ``"int8"``, ``"uint8"`` or ``"int16"``;
            anything but float32 only in the integer modes.
        inference_output_type: As ``inference_input_type``, for the output.
        allow_flex_ops: Allow TensorFlow (Flex) ops where TFLite has no builtin one.
            Off by default: most edge runtimes lack them.
        batch_size: ``None`` keeps the batch dimension dynamic, so the
            interpreter can resize it. A positive int fixes it: every shape in
            the file is static and ``Flatten``/``Reshape`` need no run-time shape
            ops, which makes the file smaller and is what TFLite Micro expects.
            The model must have known inputs (built on ``keras.Input``).
            ``"auto"`` (the default) is ``None``, except for a model with
            recurrent layers (LSTM, GRU, SimpleRNN, also inside Bidirectional),
            whose loop the converter lowers only with a static batch: it gets 1,
            with a warning that says so. In the integer modes such layers are
            also converted unrolled (one set of ops per time step), since
            TensorFlow's calibrator crashes on their loop (fused LSTMs excepted).
        strip_strings: Remove the tensor names, subgraph name, description and
            signature from the file (``ai_edge_litert.tools.flatbuffer_utils``):
            the arithmetic is unchanged and the file is smaller, but the
            interpreter's signature runner and tensor names are gone; inputs and
            outputs are still reached by index (``get_input_details``).
        fuse_lstm: Convert each plain ``keras.layers.LSTM`` (tanh and sigmoid,
            a bias, no mask, state or initial state, not backwards; see
            :mod:`tflite_export.fused_lstm`) to TFLite's fused
            ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op instead of a loop, in the float,
            ``float16``, ``dynamic`` and converter-calibrated ``int8`` modes. The
            file is smaller (int8: one op, not one set per time step) but slower
            on a desktop CPU, where XNNPACK runs the loop's ops and not the fused
            one (BENCHMARKS.md, ``fused_lstm``). The
            fused op keeps its state between invocations, so a runtime resets
            it before each sequence (``interpreter.reset_all_variables()``;
            ``predict`` does); a warning says so. Quantization-aware models and
            ``int16x8`` keep the loop. Off by default.
        sparse_weights: Store weights that are mostly zeros (pruned) in TFLite's
            sparse format: the converter's ``EXPERIMENTAL_SPARSITY``
            optimization, read back by a ``DENSIFY`` op per tensor. The file is
            smaller; the arithmetic is that of the dense file. Convolutions the
            converter gave SAME padding in place of a ``ZeroPadding2D`` get it
            back as a ``PAD`` op (:mod:`tflite_export.explicit_padding`), so a
            model in the form XNNPACK's sparse kernels take keeps it;
            :func:`tflite_export.sparse_inference_check` says whether a file has
            that form. Whether a runtime then runs it faster is measured, not
            promised (BENCHMARKS.md, ``sparse_inference``). Off by default.
        fold_time_distributed: Export each ``TimeDistributed`` layer as its inner
            layer once over every frame (steps folded into the batch) instead of
            once per frame (:mod:`tflite_export.time_folding`): the same function,
            several times faster on XNNPACK. On by default.
        grid_weights_int8: In a quantization-aware ``int8`` file, store the
            float32 kernels of the ops TFLite keeps in float (a recurrent layer's
            loop, a Conv3D), which hold int8-grid values, as int8 read through a
            ``DEQUANTIZE`` op (:mod:`tflite_export.grid_weights`): the same
            arithmetic, a quarter of their bytes. On by default.

    Returns:
        ``output_path``.

    Raises:
        ValueError: For a bad argument, before any work is done.
        ConversionError: If the converter fails; the message summarizes its own.

    Example:

    >>> import tempfile, os, keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> path = convert(model, os.path.join(tempfile.mkdtemp(), "m.tflite"))
    >>> os.path.getsize(path) > 0
    True
    """
    output_path = os.fspath(output_path)
    if not output_path.endswith(".tflite"):
        raise ValueError(f"output_path must end in '.tflite'. Received: output_path={output_path!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
    if batch_size not in (None, "auto") and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"batch_size must be 'auto', None or a positive int. Received: batch_size={batch_size!r}")
    if not isinstance(strip_strings, bool):
        raise ValueError(f"strip_strings must be True or False. Received: strip_strings={strip_strings!r}")
    if not isinstance(fuse_lstm, bool):
        raise ValueError(f"fuse_lstm must be True or False. Received: fuse_lstm={fuse_lstm!r}")
    for name, value in (
        ("sparse_weights", sparse_weights),
        ("fold_time_distributed", fold_time_distributed),
        ("grid_weights_int8", grid_weights_int8),
    ):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False. Received: {name}={value!r}")
    model = _as_model(model_or_path)
    if batch_size == "auto":
        batch_size = recurrent.automatic_batch_size(model)
    input_signature = _input_signature(model, batch_size)
    quantization_aware = export_hooks.is_quantization_aware(model)
    if quantization_aware and mode not in _INTEGER_MODES:
        raise ValueError(
            f"Model {model.name!r} is quantization-aware; convert it with an integer mode, "
            f"'int8' for the 8-bit and n-bit schemes or 'int16x8' for the 16x8 scheme. Received: mode={mode!r}"
        )
    if mode == "int16x8" and quantization_aware and representative_dataset is None:
        raise ValueError(
            f"Model {model.name!r} is quantization-aware; in mode='int16x8' the converter cannot read 16-bit "
            "ranges from it, so its int16 activation ranges are calibrated on representative_dataset "
            "(the trained int8 weights are kept). Received: representative_dataset=None"
        )
    if mode in _INTEGER_MODES and representative_dataset is None and not quantization_aware:
        raise ValueError(
            f"mode={mode!r} calibrates activation ranges and needs representative_dataset "
            "(a tf.data.Dataset or array of typical inputs). Received: representative_dataset=None"
        )
    if representative_dataset is not None and not calibration.is_representative(representative_dataset):
        raise ValueError(
            "representative_dataset must be a tf.data.Dataset, a NumPy array, or for a model with several "
            "inputs a dict or list of NumPy arrays. "
            f"Received: representative_dataset of type {type(representative_dataset).__name__}"
        )
    for name, value in (
        ("inference_input_type", inference_input_type),
        ("inference_output_type", inference_output_type),
    ):
        if value not in _IO_TYPES:
            raise ValueError(f"{name} must be one of {tuple(_IO_TYPES)}. Received: {name}={value!r}")
        if value != "float32" and mode not in _INTEGER_MODES:
            raise ValueError(f"{name}={value!r} needs an integer mode ('int8' or 'int16x8'). Received: mode={mode!r}")
    model = conversion_copy(model, mode, quantization_aware=quantization_aware, fuse_lstm=fuse_lstm)
    lowered = quantization_aware and mode == "int8"
    with tempfile.TemporaryDirectory(prefix="kopt-tflite-") as workdir:
        try:
            converter = _make_converter(model, workdir, lowered, input_signature, fold_time_distributed)
            _configure(
                converter,
                mode,
                representative_dataset,
                inference_input_type,
                inference_output_type,
                allow_flex_ops,
                model,
            )
            if sparse_weights:
                converter.optimizations = list(converter.optimizations) + [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
            if lowered:
                # Ranges come from the model; an INT8-only op set would demand a
                # representative dataset. Float fallbacks are reported below.
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + (
                    [tf.lite.OpsSet.SELECT_TF_OPS] if allow_flex_ops else []
                )
            flatbuffer = converter.convert()
        except Exception as err:  # The exporter and converter raise many types.
            hint = ""
            looped = recurrent.looped_layers(model) if quantization_aware and representative_dataset is not None else []
            if looped and re.search("scale|quantiz", str(err)):
                hint = (
                    f". Recurrent layer(s) {', '.join(looped[:5])} of this quantization-aware model keep their loop "
                    "in float by design, and representative_dataset makes the converter calibrate it, which breaks "
                    "the grids QAT learned around it: convert with representative_dataset=None"
                )
            raise ConversionError(
                f"TFLite conversion of model {model.name!r} (mode={mode!r}) failed: {_summarize(err)}{hint}"
            ) from err
    if lowered:
        _warn_if_float_ops(model, flatbuffer)
        if grid_weights_int8:
            flatbuffer, _ = int8_grid_weights(flatbuffer)
    if sparse_weights:
        if mode in _INTEGER_MODES:
            problem = densified_problem(model.name, mode, flatbuffer)
            if problem:
                raise ConversionError(problem)
        # The converter folds ZeroPadding2D into SAME padding, which XNNPACK's sparse path refuses.
        flatbuffer = explicit_depthwise_padding(flatbuffer)
    if strip_strings:
        flatbuffer = strip_file_strings(flatbuffer)
    atomic_write_bytes(output_path, flatbuffer)
    return output_path


def conversion_copy(model, mode, *, quantization_aware, fuse_lstm=False):
    """The model the converter reads: training wrappers stripped (export hooks), LSTMs fused if asked, loops unrolled for calibration.

    :func:`convert` and :func:`tflite_export.quantization_error` convert through it.
    """
    model = export_hooks.prepare_for_export(model, mode)
    if fuse_lstm and not quantization_aware and mode != "int16x8":
        model, fused = fused_lstm.fused(model)
        if fused:
            warnings.warn(
                f"LSTM layer(s) {', '.join(fused[:5])} of model {model.name!r} become TFLite's fused "
                "UNIDIRECTIONAL_SEQUENCE_LSTM op, which keeps its state between invocations: reset it before each "
                "new sequence (LiteRT: interpreter.reset_all_variables(); tflite_export.predict does). "
                "fuse_lstm=False keeps the loop.",
                stacklevel=3,
            )
    if mode in _INTEGER_MODES and not quantization_aware:
        model = recurrent.unrolled(model)
    return model


def _warn_if_float_ops(model, flatbuffer):
    from tflite_export.inspect import inspect
    from tflite_export.inspect import is_fully_integer

    integer, reasons = is_fully_integer(inspect(flatbuffer))
    if not integer:
        warnings.warn(
            f"The int8 file of quantization-aware model {model.name!r} still computes in float: "
            + "; ".join(reasons[:5])
            + (f" (and {len(reasons) - 5} more)" if len(reasons) > 5 else "")
            + ". Layers left unannotated or with NoOpQuantizeConfig run in float; so do, by design, the scores "
            "and softmax of a split MultiHeadAttention, LayerNormalization after its mean, and the loop of a "
            "recurrent layer and a Conv3D (their kernels hold int8-grid values, stored as int8), which TFLite has no matching int8 "
            "kernel for, and "
            "the activations the converter leaves float (ELU, SELU, softplus, softsign, mish, hard sigmoid).",
            stacklevel=3,
        )


def _as_model(model_or_path):
    if isinstance(model_or_path, keras.Model):
        return model_or_path
    return load_model(model_or_path)


def load_model(path):
    """Loads a ``.keras`` file after the installed plugins registered their layers; ``ValueError`` if it cannot."""
    path = os.fspath(path)
    # Files saved mid-optimization hold libraries' training layers (kopt's wrappers).
    plugins.register_layers()
    if not os.path.isfile(path):
        raise ValueError(f"model_or_path is neither a keras.Model nor an existing file. Received: {path!r}")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as err:
        reason = plugins.unknown_class_hint(err) or _summarize(err)
        raise ValueError(f"model_or_path is not a loadable Keras model file: {path!r} ({reason})") from err


def _input_signature(model, batch_size):
    if batch_size is None:
        return None
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            f"batch_size fixes the shape of the model's inputs, but model {model.name!r} has no known inputs; "
            f"build it on keras.Input. Received: batch_size={batch_size}"
        )
    specs = [tf.TensorSpec((batch_size,) + tuple(x.shape[1:]), x.dtype) for x in inputs]
    # The exported function takes the model's call arguments: one tensor, or the list.
    return specs if len(specs) == 1 else [specs]


def _make_converter(model, workdir, lowered, input_signature=None, fold_time_distributed=True):
    # Keras 3 documents the SavedModel route; converting a traced function that
    # still holds resource variables gives files that read uninitialized variables.
    saved_model_dir = os.path.join(workdir, "saved_model")
    # Augmentation layers are called as model.predict calls them (see tflite_export.inference).
    # Per-frame layers run once over every frame (tflite_export.time_folding).
    folding = folded_time_distributed(model) if fold_time_distributed else contextlib.nullcontext()
    with inference.inference_calls(model), folding:
        if lowered:
            with export_hooks.lowering_of(model)():
                model.export(saved_model_dir, format="tf_saved_model", verbose=False, input_signature=input_signature)
        else:
            model.export(saved_model_dir, format="tf_saved_model", verbose=False, input_signature=input_signature)
    return tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)


def _configure(converter, mode, representative_dataset, input_type, output_type, allow_flex_ops, model):
    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode in _INTEGER_MODES:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if representative_dataset is not None:
            converter.representative_dataset = calibration.calibration_generator(representative_dataset, model)
        if mode == "int8":
            builtins = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        else:
            builtins = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_input_type = _IO_TYPES[input_type]
        converter.inference_output_type = _IO_TYPES[output_type]
    if allow_flex_ops:
        builtins = builtins + [tf.lite.OpsSet.SELECT_TF_OPS]
    converter.target_spec.supported_ops = builtins


def _summarize(err):
    text = str(err)
    # The converter buries the useful part in MLIR locations; the op names are what
    # a user can act on.
    if "TensorListReserve" in text and "element_shape to be static" in text:
        return (
            "a loop (recurrent layer) whose shapes depend on the batch; convert with a static batch, "
            "batch_size=1 (batch_size='auto' does this for Keras RNN layers)"
        )
    missing_ops = sorted(set(re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", text)))
    if missing_ops:
        return (
            f"ops with no builtin TFLite kernel: {', '.join(missing_ops)}; replace them, or pass "
            "allow_flex_ops=True if the target runtime links the TensorFlow (Flex) delegate"
        )
    for line in text.splitlines():
        if "error:" in line:
            reason = re.sub(r"loc\(.*\)\):?", "", line.split("error:", 1)[1]).strip()
            if reason:
                return reason[:300]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else type(err).__name__
