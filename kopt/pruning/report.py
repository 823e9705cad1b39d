"""Sparsity of a Keras model or a ``.tflite`` file, and M:N structure checks.

``sparsity_report`` counts exactly-zero values in every weight of a Keras model
(per layer and per weight) or in every constant weight tensor of a TFLite
flatbuffer (per tensor; integer constants without quantization parameters are
shapes and indices, and are left out). For quantized tensors a value counts as zero when it equals the
tensor's zero point, i.e. when it dequantizes to 0. ``overall`` covers weights
with two or more dimensions: the kernels pruning acts on, not biases or
normalization statistics.

``check_m_by_n`` uses tfmot's convention, the one ``prune_low_magnitude``'s
``sparsity_m_by_n`` follows: a tensor is **M:N sparse** when every block of ``n``
consecutive weights along the *input-channel* axis holds at least ``m`` zeros, so
at most ``n - m`` non-zeros (2:4 means two zeros in each group of four, what sparse
tensor cores and XNNPACK can exploit). The input-channel axis is:

* Keras ``Dense`` kernel ``(in, out)``: axis 0; ``Conv1D/2D/3D`` kernel
  ``(..., in, out)`` and SeparableConv pointwise kernel: axis -2.
* TFLite ``FULLY_CONNECTED`` weights ``[out, in]`` and ``CONV_2D`` weights
  ``[out, h, w, in]``: the last axis.

Depthwise kernels have no input-channel reduction and are not checked. A block
cut short by the end of the axis is checked as if padded with zeros.

The TFLite file is read with ``tflite_export.flatbuffer``, which parses the
flatbuffer schema that ships with ``ai_edge_litert``: the interpreter's
``get_tensor_details`` cannot tell constant weights from activations, nor which
operator reads a tensor.

Example:

>>> import keras
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
>>> _ = model.layers[0].kernel.assign([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [3.0, 0.0]])
>>> sparsity_report(model)["overall"]["sparsity"]
0.625
>>> check_m_by_n(model, m=2, n=4)["ok"]
True
"""

import os
from typing import Any

import keras
import numpy as np

from kopt.pruning import prunable
from tflite_export.flatbuffer import TFLiteFlatbuffer
from tflite_export.layers import leaf_layers
from tflite_export.m_by_n import check_blocks
from tflite_export.m_by_n import check_file_m_by_n
from tflite_export.m_by_n import check_pattern
from tflite_export.m_by_n import m_by_n_result

_KERAS_KERNEL_LAYERS = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)


def sparsity_report(model_or_tflite_path: keras.Model | str | os.PathLike | bytes) -> dict[str, Any]:
    """Zero counts, sizes and sparsity of every weight.

    Args:
        model_or_tflite_path: A ``keras.Model``, a path to a ``.tflite`` file, or
            the file's bytes.

    Returns:
        A JSON-ready dict with ``source`` (``"keras"`` or ``"tflite"``), ``model``,
        ``tensors`` (a list of ``{"name", "shape", "dtype", "size", "zeros",
        "sparsity"}``, plus ``"layer"`` for Keras and ``"ops"``, the readers as
        ``"OP:input_index"``, for TFLite), ``overall`` (``size``, ``zeros``,
        ``sparsity`` over tensors of two or more dimensions) and, for Keras,
        ``layers``: the same totals per layer.

    Raises:
        ValueError: If the argument is neither a model nor a readable ``.tflite``.
    """
    if isinstance(model_or_tflite_path, keras.Model):
        tensors = [_entry(name, values, layer=layer) for name, layer, values in _keras_weights(model_or_tflite_path)]
        report = {"source": "keras", "model": model_or_tflite_path.name, "tensors": tensors}
        report["layers"] = []
        for layer in dict.fromkeys(t["layer"] for t in tensors):
            totals = _totals([t for t in tensors if t["layer"] == layer])
            report["layers"].append({"layer": layer, **totals})
    else:
        model = TFLiteFlatbuffer(model_or_tflite_path, arg_name="model_or_tflite_path")
        tensors = []
        for tensor_id, values in model.constants():
            entry = _entry(model.name(tensor_id), values, zero_point=model.zero_point(tensor_id, values.ndim))
            entry["ops"] = model.readers(tensor_id)
            tensors.append(entry)
        report = {"source": "tflite", "model": model.label, "tensors": tensors}
    report["overall"] = _totals(tensors)
    return report


def check_m_by_n(
    tflite_path_or_model: str | os.PathLike | bytes | keras.Model, m: int = 2, n: int = 4
) -> dict[str, Any]:
    """Checks that every block of ``n`` input-channel weights has at least ``m`` zeros.

    Args:
        tflite_path_or_model: A ``.tflite`` path or bytes, or a ``keras.Model``.
        m: Fewest zeros required per block (2 in "2:4"), as tfmot's ``sparsity_m_by_n``.
        n: Block length along the input-channel axis (4 in "2:4").

    Returns:
        A JSON-ready dict: ``m``, ``n``, ``convention``, ``tensors`` (one
        ``{"name", "shape", "axis", "blocks", "violating_blocks", "ok"}`` per
        kernel of a Dense/Conv layer or weights input of a TFLite
        ``FULLY_CONNECTED``/``CONV_2D``) and ``ok``: True if there is at least one
        such tensor and all pass.

    Raises:
        ValueError: For ``m``/``n`` that are not integers with ``1 <= m < n``, or an
            unreadable model.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> check_m_by_n(model)["ok"]  # freshly initialized weights are dense
    False
    """
    if not isinstance(tflite_path_or_model, keras.Model):
        return check_file_m_by_n(tflite_path_or_model, m=m, n=n)
    check_pattern(m, n)
    checked = []
    for name, layer, values in _keras_weights(tflite_path_or_model):
        layer_object = tflite_path_or_model.get_layer(layer)
        if isinstance(layer_object, _KERAS_KERNEL_LAYERS) and name.rsplit("/", 1)[-1] in ("kernel", "pointwise_kernel"):
            checked.append(check_blocks(name, values, values.ndim - 2, m, n, zero_point=0))
    return m_by_n_result(checked, m, n)


def kernel_sparsity(model: keras.Model, *, prunable_only: bool = False) -> float:
    """Fraction of exactly-zero values among the model's kernel weights: kopt's one sparsity measure.

    By default kernels are all weights with two or more dimensions (dense and
    convolution kernels, embeddings), which ``kopt-optimize`` reports as
    ``sparsity``. Biases and normalization statistics are left out, so an
    unpruned model reads close to 0. With ``prunable_only=True`` only the weights
    pruning acts on count: the prunable weights of the prunable layers
    (:func:`kopt.pruning.prunable.get_prunable_weights`), which is what
    ``kopt.auto`` budgets.

    Args:
        model: A ``keras.Model``; kopt's wrappers count through their weights.
        prunable_only: Count only prunable weights of prunable layers.

    Returns:
        Zeros over weights counted, or 0.0 when there is none.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> _ = model.layers[0].kernel.assign([[0.0, 1.0], [0.0, 2.0]])
    >>> kernel_sparsity(model), kernel_sparsity(model, prunable_only=True)
    (0.5, 0.5)
    """
    if prunable_only:
        weights = [
            weight
            for layer in leaf_layers(model)
            if layer.built and layer.weights and prunable.is_prunable(layer)
            for weight in prunable.get_prunable_weights(layer)
        ]
    else:
        weights = [weight for weight in model.weights if len(weight.shape) >= 2]
    zeros = 0
    total = 0
    for weight in weights:
        values = keras.ops.convert_to_numpy(weight.value)
        zeros += int(np.count_nonzero(values == 0))
        total += values.size
    return float(zeros / total) if total else 0.0


def empty_channels(model: keras.Model) -> dict[str, Any]:
    """Output channels whose kernel weights are all exactly zero.

    Magnitude pruning at high sparsity can zero whole filters. Such a channel
    outputs only its bias, a constant, so structured pruning removes it at little
    cost: with the default ``"l1"`` importance,
    ``prune_channels(model, {layer: empty / channels})`` takes exactly these. Its
    int8 weight range is empty, which kopt's quantizers handle by giving it the
    scale of the layer's other channels.

    Channels are the last kernel axis of ``Dense`` and ``ConvND`` layers,
    ``in * multiplier`` for depthwise kernels, and axis -2 of transposed
    convolutions. Layers inside kopt's wrappers are looked through.

    Args:
        model: A ``keras.Model``.

    Returns:
        A JSON-ready dict: ``channels`` and ``empty`` (totals over all kernels) and
        ``layers``, one ``{"layer", "weight", "channels", "empty", "indices"}`` per
        kernel that has at least one empty channel.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, name="d")])
    >>> _ = model.layers[0].kernel.assign([[1.0, 0.0, 0.0], [2.0, 0.0, 3.0]])
    >>> report = empty_channels(model)
    >>> report["empty"], report["channels"], report["layers"][0]["indices"]
    (1, 3, [1])
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"empty_channels needs a keras.Model. Received: model={model!r}")
    total = 0
    empty_total = 0
    layers = []
    for layer in model.layers:
        inner = layer
        while hasattr(inner, "layer") and isinstance(inner.layer, keras.layers.Layer):
            inner = inner.layer  # kopt's pruning, clustering and QAT wrappers
        for variable in inner.weights:
            name = variable.path.rsplit("/", 1)[-1]
            if name not in _CHANNEL_KERNELS or len(variable.shape) < 2:
                continue
            per_channel = _by_output_channel(inner, name, np.asarray(variable.numpy()))
            empty = np.flatnonzero(~per_channel.any(axis=0))
            total += per_channel.shape[1]
            empty_total += int(empty.size)
            if empty.size:
                layers.append(
                    {
                        "layer": layer.name,
                        "weight": variable.path,
                        "channels": int(per_channel.shape[1]),
                        "empty": int(empty.size),
                        "indices": [int(i) for i in empty],
                    }
                )
    return {"channels": total, "empty": empty_total, "layers": layers}


_CHANNEL_KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


def _by_output_channel(layer, name, values):
    """``values != 0`` as a ``(weights per channel, channels)`` array."""
    # Keras names a DepthwiseConv kernel "kernel", a SeparableConv one "depthwise_kernel".
    if name == "depthwise_kernel" or isinstance(layer, _DEPTHWISE) and name == "kernel":
        values = values.reshape(values.shape[:-2] + (-1,))
    elif name == "kernel" and "Transpose" in type(layer).__name__:
        values = np.moveaxis(values, -2, -1)
    return (values != 0).reshape(-1, values.shape[-1])


def format_sparsity_report(report: dict[str, Any]) -> str:
    """Renders a :func:`sparsity_report` dict as a fixed-width table.

    Example:

    >>> print(format_sparsity_report({"source": "keras", "model": "m", "tensors": [
    ...     {"name": "d/kernel", "shape": [2, 2], "size": 4, "zeros": 1, "sparsity": 0.25}],
    ...     "overall": {"size": 4, "zeros": 1, "sparsity": 0.25}}))
    Sparsity of m (keras)
    tensor        shape   size  zeros  sparsity
    d/kernel      2x2        4      1     25.0%
    overall (ndim >= 2)      4      1     25.0%
    """
    rows = [
        (t["name"], "x".join(str(d) for d in t["shape"]) or "scalar", t["size"], t["zeros"], t["sparsity"])
        for t in report["tensors"]
    ]
    overall = report["overall"]
    name_width = max([len("tensor")] + [len(row[0]) for row in rows]) + 2
    shape_width = max([len("shape")] + [len(row[1]) for row in rows]) + 2
    label = "overall (ndim >= 2)"
    name_width = max(name_width, len(label) + 2 - shape_width)
    lines = [
        f"Sparsity of {report['model']} ({report['source']})",
        f"{'tensor':<{name_width}}{'shape':<{shape_width}}{'size':>5}{'zeros':>7}{'sparsity':>10}",
    ]
    for name, shape, size, zeros, sparsity in rows:
        lines.append(f"{name:<{name_width}}{shape:<{shape_width}}{size:>5}{zeros:>7}{sparsity:>10.1%}")
    size, zeros, sparsity = overall["size"], overall["zeros"], overall["sparsity"]
    lines.append(f"{label:<{name_width + shape_width}}{size:>5}{zeros:>7}{sparsity:>10.1%}")
    return "\n".join(lines)


def _keras_weights(model):
    """``(weight path, layer name, values)`` for every floating-point weight."""
    for layer in model.layers:
        for variable in layer.weights:
            if "float" in str(variable.dtype):
                yield variable.path, layer.name, np.asarray(variable.numpy())


def _entry(name, values, *, layer=None, zero_point=0):
    zeros = int(np.count_nonzero(values == zero_point))
    entry = {
        "name": name,
        "shape": [int(d) for d in values.shape],
        "dtype": str(values.dtype),
        "size": int(values.size),
        "zeros": zeros,
        "sparsity": zeros / values.size if values.size else 0.0,
    }
    if layer is not None:
        entry["layer"] = layer
    return entry


def _totals(tensors):
    kernels = [t for t in tensors if len(t["shape"]) >= 2]
    size = sum(t["size"] for t in kernels)
    zeros = sum(t["zeros"] for t in kernels)
    return {"size": size, "zeros": zeros, "sparsity": zeros / size if size else 0.0}
