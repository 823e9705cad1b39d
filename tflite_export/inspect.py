"""What is inside a ``.tflite`` file: operators, tensors, quantization, sparsity, size.

``inspect`` reads the flatbuffer (nothing is run) and returns a JSON-ready dict;
``format_inspection`` renders it as text; ``is_fully_integer`` says whether every
operator computes in integers, with one reason per place where it does not.

**Parameters** are the element counts of the constant weights and biases of the
weight-bearing ops (``CONV_2D``, ``DEPTHWISE_CONV_2D``, ``FULLY_CONNECTED``,
``TRANSPOSE_CONV``, ``CONV_3D``, ``CONV_3D_TRANSPOSE``), each tensor counted once
even when several ops read it, and seen through a ``DEQUANTIZE`` (float16 files
keep weights as float16 and dequantize them). Shapes, axes and indices (the int32
constants of ``RESHAPE``, ``STRIDED_SLICE``...) are not parameters. For a model
of Dense and Conv layers this equals Keras' ``count_params()``, with two caveats
from the converter: it folds BatchNormalization into the preceding kernel, and it
merges identical constants (two all-zero biases become one tensor) and drops
all-zero ``FULLY_CONNECTED`` biases, so freshly initialized models count fewer.

Example:

>>> import tempfile, os, keras
>>> from tflite_export.converter import convert
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, bias_initializer="ones")])
>>> path = convert(model, os.path.join(tempfile.mkdtemp(), "m.tflite"))
>>> report = inspect(path)
>>> report["op_counts"], report["parameters"]
({'FULLY_CONNECTED': 1}, 10)
>>> is_fully_integer(report)[0]
False
"""

import collections
import os
from typing import Any

import numpy as np

from tflite_export.flatbuffer import TFLiteFlatbuffer
from tflite_export.m_by_n import check_file_m_by_n
from tflite_export.sizes import byte_sizes
from tflite_export.sizes import file_sizes

# op -> (activation input, weights input, bias input), positions in the op's inputs.
WEIGHT_OPS = {
    "CONV_2D": (0, 1, 2),
    "DEPTHWISE_CONV_2D": (0, 1, 2),
    "FULLY_CONNECTED": (0, 1, 2),
    "TRANSPOSE_CONV": (2, 1, 3),
    "CONV_3D": (0, 1, 2),
    "CONV_3D_TRANSPOSE": (2, 1, 3),
}
# Activation type -> the weight and bias types an integer kernel takes with it. uint8 is TFLite's first,
# unsigned format (one scale per tensor), which the TensorFlow 2 converter no longer writes.
_WEIGHT_TYPES = {"int8": ("int8", "int4"), "int16": ("int8", "int4"), "uint8": ("uint8",)}
_ACTIVATION_TYPES = tuple(_WEIGHT_TYPES)
_BIAS_TYPES = {"int8": ("int32",), "int16": ("int32", "int64"), "uint8": ("int32",)}
_BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")


def inspect(
    tflite_path_or_bytes: str | os.PathLike | bytes, *, m_by_n: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Describes a ``.tflite`` file without running it.

    Args:
        tflite_path_or_bytes: A path ending in ``.tflite``, or the file's bytes.
        m_by_n: Optional ``(m, n)``, e.g. ``(2, 4)``: also check that the weights of
            every ``FULLY_CONNECTED``/``CONV_2D`` hold at least ``m`` zeros in each
            block of ``n`` input channels (``kopt.pruning.check_m_by_n``).

    Returns:
        A JSON-ready dict:

        * ``source``: the path, or ``"<bytes>"``; ``subgraphs``: how many the file
          has (only the main one, which the interpreter runs, is described).
        * ``inputs``, ``outputs``: the model's tensors, each ``{"tensor", "name",
          "dtype", "shape", "shape_signature", "quantization", "constant"}``;
          ``shape_signature`` has ``-1`` for resizable dimensions, and
          ``quantization`` is ``{"scale": [...], "zero_point": [...], "axis"}``
          (``axis`` ``None`` when per tensor) or ``None``.
        * ``ops``: in execution order, ``{"index", "op", "kind", "inputs",
          "outputs"}``; ``op`` is the builtin name (``"CONV_2D"``) or the custom
          code (``"FlexErf"`` for a Flex op); ``kind`` is ``"builtin"``,
          ``"custom"`` or ``"flex"``; tensors as above, ``None`` for an omitted
          optional input.
        * ``op_counts``: ``{op: count}``; ``flex_ops``, ``custom_ops``: sorted names.
        * ``tensors``: every constant, ``{"tensor", "name", "dtype", "shape",
          "size", "zeros", "sparsity", "readers", "parameter"}``; ``zeros`` counts
          entries equal to the zero point (entries that dequantize to 0), and is
          ``None`` with ``sparsity`` for packed or sparse-encoded data.
        * ``parameters``: see the module docstring for the rule.
        * ``size``: ``{"bytes", "gzip_bytes"}``, as ``file_sizes``.
        * ``m_by_n``: the ``check_m_by_n`` result, or ``None``.

    Raises:
        ValueError: For a bad ``m_by_n``, a path not ending in ``.tflite``, a
            missing file or one that is not a TFLite flatbuffer, before any work.
    """
    if m_by_n is not None:
        valid = (
            isinstance(m_by_n, (tuple, list))
            and len(m_by_n) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in m_by_n)
            and 1 <= m_by_n[0] < m_by_n[1]
        )
        if not valid:
            raise ValueError(f"m_by_n must be a pair of integers (m, n) with 1 <= m < n. Received: m_by_n={m_by_n!r}")
    model = TFLiteFlatbuffer(tflite_path_or_bytes)
    parameter_ids = _parameter_tensors(model)
    ops = [
        {
            "index": op.index,
            "op": op.name,
            "kind": op.kind,
            "inputs": [_tensor(model, t) for t in op.inputs],
            "outputs": [_tensor(model, t) for t in op.outputs],
        }
        for op in model.ops
    ]
    report = {
        "source": model.label,
        "subgraphs": model.subgraph_count,
        "inputs": [_tensor(model, t) for t in model.inputs],
        "outputs": [_tensor(model, t) for t in model.outputs],
        "ops": ops,
        "op_counts": dict(collections.Counter(op.name for op in model.ops)),
        "flex_ops": sorted({op.name for op in model.ops if op.kind == "flex"}),
        "custom_ops": sorted({op.name for op in model.ops if op.kind == "custom"}),
        "tensors": [_constant(model, t, t in parameter_ids) for t in range(model.tensor_count) if model.is_constant(t)],
        "parameters": sum(_element_count(model.shape(t)) for t in parameter_ids),
        "size": file_sizes(model.label) if model.label != "<bytes>" else byte_sizes(model.data),
        "m_by_n": None,
    }
    if m_by_n is not None:
        report["m_by_n"] = check_file_m_by_n(model.data, m=m_by_n[0], n=m_by_n[1])
    return report


def is_fully_integer(report: dict[str, Any] | str | os.PathLike | bytes) -> tuple[bool, list[str]]:
    """Whether every operator of an ``inspect`` report computes in integers.

    The rules, each failure giving one reason that names the op index and tensor:

    * every ``CONV_2D``, ``DEPTHWISE_CONV_2D``, ``FULLY_CONNECTED``,
      ``TRANSPOSE_CONV`` (and 3-D convolution) reads and writes quantized int8
      activations, or int16 ones (the 16x8 mode), with int8 (or int4) weights
      and an int32 bias (int64 also allowed with int16 activations), or the
      legacy unsigned format: uint8 activations and weights, an int32 bias;
    * no such op reads a tensor written by ``DEQUANTIZE`` (weights kept in float);
    * there are no Flex or custom ops;
    * no other op reads or writes a floating-point tensor, except ``QUANTIZE`` and
      ``DEQUANTIZE``, which convert at the float model inputs and outputs.

    Args:
        report: An ``inspect`` dict, or a ``.tflite`` path or bytes to inspect.

    Returns:
        ``(ok, reasons)``: ``ok`` is True when ``reasons`` is empty.

    Raises:
        ValueError: If ``report`` is a dict without ``ops``, or an unreadable file.

    Example:

    >>> is_fully_integer({"ops": [{"index": 0, "op": "FlexErf", "kind": "flex", "inputs": [], "outputs": []}]})
    (False, ['op 0 FlexErf: flex op; integer-only runtimes have no kernel for it'])
    """
    if not isinstance(report, dict):
        report = inspect(report)
    if not isinstance(report.get("ops"), list):
        raise ValueError(
            f"report must be a dict returned by inspect(). Received: report=<dict with keys {list(report)[:10]}>"
        )
    producers = {t["tensor"]: op for op in report["ops"] for t in op["outputs"] if t is not None}
    reasons = []
    for op in report["ops"]:
        label = f"op {op['index']} {op['op']}"
        if op["kind"] in ("flex", "custom"):
            reasons.append(f"{label}: {op['kind']} op; integer-only runtimes have no kernel for it")
        elif op["op"] in WEIGHT_OPS:
            reasons.extend(_weight_op_reasons(op, label, producers))
        elif op["op"] not in _BOUNDARY_OPS:
            for role, tensors in (("input", op["inputs"]), ("output", op["outputs"])):
                for position, tensor in enumerate(tensors):
                    if tensor is not None and tensor["dtype"].startswith(("float", "bfloat")):
                        reasons.append(f"{label}: {role} {position} {tensor['name']!r} is {tensor['dtype']}")
    return not reasons, reasons


def format_inspection(report: dict[str, Any]) -> str:
    """Renders an ``inspect`` dict as a readable table.

    Shapes use ``?`` for resizable dimensions; a ``*`` marks a constant tensor.

    Example:

    >>> import tempfile, os, keras
    >>> from tflite_export.converter import convert
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> text = format_inspection(inspect(convert(model, os.path.join(tempfile.mkdtemp(), "m.tflite"))))
    >>> "FULLY_CONNECTED" in text and "float32[?x4]" in text
    True
    """
    size = report["size"]
    lines = [
        f"TFLite model {report['source']}: {len(report['ops'])} ops, {report['parameters']:,} parameters, "
        f"{size['bytes']:,} bytes ({size['gzip_bytes']:,} gzipped)"
    ]
    for role in ("inputs", "outputs"):
        described = ", ".join(f"{_clip(t['name'])} {_short(t)}{_quantization_text(t)}" for t in report[role])
        lines.append(f"{role + ':':<9}{described or 'none'}")
    rows = [
        (
            str(op["index"]),
            op["op"] if op["kind"] == "builtin" else f"{op['op']} ({op['kind']})",
            " ".join(_short(t) for t in op["inputs"]),
            " ".join(_short(t) for t in op["outputs"]),
        )
        for op in report["ops"]
    ]
    lines.append("")
    lines.extend(_table(("#", "op", "inputs (* constant)", "outputs"), rows))
    counts = ", ".join(f"{name} x{count}" for name, count in sorted(report["op_counts"].items()))
    lines.append("")
    lines.append(f"op counts: {counts or 'none'}")
    flex, custom = ", ".join(report["flex_ops"]) or "none", ", ".join(report["custom_ops"]) or "none"
    lines.append(f"flex ops: {flex}; custom ops: {custom}")
    rows = [
        (
            _clip(t["name"]),
            t["dtype"],
            "x".join(str(d) for d in t["shape"]) or "scalar",
            f"{t['size']:,}",
            "-" if t["sparsity"] is None else f"{t['sparsity']:.1%}",
            "yes" if t["parameter"] else "",
        )
        for t in report["tensors"]
    ]
    lines.append("")
    lines.extend(_table(("constant", "dtype", "shape", "size", "sparsity", "parameter"), rows, right=(3, 4)))
    if report.get("m_by_n") is not None:
        result = report["m_by_n"]
        verdict = "ok" if result["ok"] else "fails"
        lines.append("")
        lines.append(f"{result['m']}:{result['n']} sparsity ({len(result['tensors'])} weight tensors): {verdict}")
    return "\n".join(lines)


def _parameter_tensors(model):
    producers = model.producers()
    found = set()
    for op in model.ops:
        if op.name not in WEIGHT_OPS:
            continue
        _, weights, bias = WEIGHT_OPS[op.name]
        for position in (weights, bias):
            if position < len(op.inputs) and op.inputs[position] >= 0:
                source = model.stored_source(op.inputs[position], producers)
                if model.is_constant(source):
                    found.add(source)
    return found


def _tensor(model, tensor_id):
    if tensor_id < 0:
        return None
    return {
        "tensor": tensor_id,
        "name": model.name(tensor_id),
        "dtype": model.dtype(tensor_id),
        "shape": model.shape(tensor_id),
        "shape_signature": model.shape_signature(tensor_id),
        "quantization": model.quantization(tensor_id),
        "constant": model.is_constant(tensor_id),
    }


def _constant(model, tensor_id, is_parameter):
    shape = model.shape(tensor_id)
    values = model.values(tensor_id)
    size = _element_count(shape)
    zeros = None
    if values is not None:
        zero_point = model.zero_point(tensor_id, values.ndim) if model.quantization(tensor_id) else 0
        zeros = int(np.count_nonzero(values == zero_point))
    return {
        "tensor": tensor_id,
        "name": model.name(tensor_id),
        "dtype": model.dtype(tensor_id),
        "shape": shape,
        "size": size,
        "zeros": zeros,
        "sparsity": None if zeros is None else (zeros / size if size else 0.0),
        "readers": model.readers(tensor_id),
        "parameter": is_parameter,
    }


def _element_count(shape):
    return int(np.prod(shape, dtype=np.int64))


def _weight_op_reasons(op, label, producers):
    activation, weights, bias = WEIGHT_OPS[op["op"]]
    inputs = op["inputs"]

    def tensor_at(position):
        return inputs[position] if position < len(inputs) else None

    reasons = []
    for position in (activation, weights, bias):
        tensor = tensor_at(position)
        producer = producers.get(tensor["tensor"]) if tensor is not None else None
        if producer is not None and producer["op"] == "DEQUANTIZE":
            reasons.append(
                f"{label}: input {position} {tensor['name']!r} comes from DEQUANTIZE op {producer['index']}, "
                "so this op computes in float"
            )
    activation_tensor = tensor_at(activation)
    activation_type = activation_tensor["dtype"] if activation_tensor is not None else None
    checked = [(f"input {activation}", activation_tensor)] + [
        (f"output {position}", tensor) for position, tensor in enumerate(op["outputs"])
    ]
    for role, tensor in checked:
        if tensor is None:
            continue
        where = f"{label}: {role} {tensor['name']!r} is {tensor['dtype']}"
        if tensor["dtype"] not in _ACTIVATION_TYPES:
            reasons.append(f"{where}, expected int8, int16 or uint8 activations")
        elif tensor["quantization"] is None:
            reasons.append(f"{where} without quantization parameters")
        elif tensor["dtype"] != activation_type:
            reasons.append(f"{where} but input {activation} is {activation_type}")
    weight_tensor = tensor_at(weights)
    allowed_weights = _WEIGHT_TYPES.get(activation_type, _WEIGHT_TYPES["int8"])
    if weight_tensor is None:
        reasons.append(f"{label}: has no weights input {weights}")
    elif weight_tensor["dtype"] not in allowed_weights:
        reasons.append(
            f"{label}: input {weights} {weight_tensor['name']!r} is {weight_tensor['dtype']}, "
            f"expected {allowed_weights[0]} weights"
        )
    bias_tensor = tensor_at(bias)
    allowed_bias = _BIAS_TYPES.get(activation_type, ("int32",))
    if bias_tensor is not None and bias_tensor["dtype"] not in allowed_bias:
        reasons.append(
            f"{label}: input {bias} {bias_tensor['name']!r} is {bias_tensor['dtype']}, expected an "
            f"{' or '.join(allowed_bias)} bias"
        )
    return reasons


def _clip(name, width=60):
    # Fused ops carry every source name joined by ';', which can run to hundreds of characters.
    return name if len(name) <= width else name[: width - 3] + "..."


def _short(tensor):
    if tensor is None:
        return "-"
    shape = "x".join("?" if d < 0 else str(d) for d in tensor["shape_signature"])
    return f"{tensor['dtype']}[{shape}]{'*' if tensor['constant'] else ''}"


def _quantization_text(tensor):
    quantization = tensor["quantization"]
    if quantization is None:
        return ""
    if len(quantization["scale"]) == 1:
        return f" (scale {quantization['scale'][0]:.3g}, zero point {quantization['zero_point'][0]})"
    return f" ({len(quantization['scale'])} scales along axis {quantization['axis']})"


def _table(header, rows, right=()):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def render(cells):
        parts = [
            f"{cell:>{width}}" if column in right else f"{cell:<{width}}"
            for column, (cell, width) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    return [render(header)] + [render(row) for row in rows]
