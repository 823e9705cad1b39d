"""Can XNNPACK run a file with its sparse kernels? The file's form, checked before timing it.

XNNPACK (the default CPU delegate of LiteRT) has sparse kernels for the networks
of "Fast Sparse ConvNets" (Elsen et al. 2019): it switches a float subgraph to
NCHW layout and multiplies its 1x1 convolutions by sparse weight matrices when
the whole subgraph has that paper's form. The runtime gives no sign of whether it
did, so this module reads the ``.tflite`` file and checks the conditions the
delegate documents, naming the first operator that breaks one:

* weights stored sparsely (``DENSIFY`` ops; ``convert(..., sparse_weights=True)``);
* float arithmetic (the sparse kernels are float32/float16 only);
* a stem ``CONV_2D`` with a 3x3 kernel, stride 2 and 3 input channels, padded
  by one on each side through an explicit ``PAD`` (``ZeroPadding2D(1)`` before a
  ``padding="valid"`` convolution);
* then only 1x1 stride-1 ``CONV_2D``, 3x3 or 5x5 ``DEPTHWISE_CONV_2D`` of stride
  1 or 2 padded explicitly by 1 (2), ``ADD``/``MUL`` of 4-D tensors,
  ``RESIZE_BILINEAR`` and elementwise activations, up to a spatial ``MEAN``
  (``GlobalAveragePooling2D``) or a ``DEPTH_TO_SPACE``;
* at least 2/3 of those 1x1 convolutions' weights zero.

The CPU decides too: XNNPACK's sparse kernels for x86 use SSE only, and its
builds for x86 turn the NCHW rewrite off on any CPU with AVX, where they expect
their dense kernels to be faster. On such a CPU (every x86 server and desktop of
the last decade) an eligible file runs with the dense kernels after its weights
are densified; the speed-up is for Arm phones and SSE-only x86.
:func:`xnnpack_sparse_cpu` says which case this machine is, and
:func:`sparse_inference_check` reports it as ``this_cpu``.

A depthwise convolution with ``padding="same"`` is refused even when the padding
it implies is symmetric: the delegate passes it to XNNPACK as TensorFlow SAME
padding, which the sparse path does not take.

Example:

>>> import tempfile, os, keras
>>> from tflite_export.converter import convert
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
>>> path = convert(model, os.path.join(tempfile.mkdtemp(), "m.tflite"))
>>> sparse_inference_check(path)["eligible"]
False
"""

import os
import platform
from typing import Any

import numpy as np

from tflite_export.cpu import cpu_flags
from tflite_export.flatbuffer import TFLiteFlatbuffer

__all__ = ["densified_fully_connected", "densified_problem", "sparse_inference_check", "xnnpack_sparse_cpu"]

_UNARY = {
    "ABS", "CEIL", "ELU", "FLOOR", "HARD_SWISH", "LEAKY_RELU", "LOGISTIC", "NEG", "RELU", "RELU6", "RELU_N1_TO_1",
    "ROUND", "SQUARE",
}  # fmt: skip
_VALID, _SAME = 1, 0  # the schema's Padding values
# XNNPACK switches only when more than this share of the 1x1 weights is zero.
MIN_ZERO_FRACTION = 2 / 3


def sparse_inference_check(tflite_path_or_bytes: str | os.PathLike | bytes) -> dict[str, Any]:
    """Whether the file has the form XNNPACK's sparse inference needs, and why not.

    Args:
        tflite_path_or_bytes: A path ending in ``.tflite``, or the file's bytes.

    Returns:
        A JSON-ready dict: ``eligible`` (bool); ``reasons`` (what stops it, the
        first broken condition of each kind, naming the op by index and name);
        ``sparse_tensors`` (weights stored sparsely); ``conv1x1_weights``,
        ``conv1x1_zeros`` and ``zero_fraction`` over the 1x1 convolutions between
        stem and ``MEAN`` (``None`` when none was reached); ``this_cpu``
        (:func:`xnnpack_sparse_cpu`: whether XNNPACK takes its sparse path on
        this machine at all; ``eligible`` is about the file alone).

    Raises:
        ValueError: For a missing file or one that is not a TFLite flatbuffer.
    """
    flat = TFLiteFlatbuffer(tflite_path_or_bytes)
    reasons = []
    densified = {op.outputs[0]: op.inputs[0] for op in flat.ops if op.name == "DENSIFY"}
    if not densified:
        reasons.append("no weight is stored sparsely (no DENSIFY op): convert with sparse_weights=True")
    integer = [op for op in flat.ops if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D") and _is_integer(flat, op)]
    if integer:
        reasons.append(
            f"op #{integer[0].index} {integer[0].name} computes in {flat.dtype(integer[0].inputs[0])}: "
            "XNNPACK's sparse kernels are float only"
        )
    producers = flat.producers()
    consumers = {}
    for op in flat.ops:
        for tensor in op.inputs:
            consumers.setdefault(tensor, []).append(op)
    stems = [op for op in flat.ops if _stem_problem(flat, op, producers) is None]
    result = {"sparse_tensors": len(densified), "conv1x1_weights": 0, "conv1x1_zeros": 0, "zero_fraction": None}
    if not stems:
        candidates = [op for op in flat.ops if op.name == "CONV_2D" and _kernel(flat, op)[1:] == [3, 3, 3]]
        why = _stem_problem(flat, candidates[0], producers) if candidates else "none has a 3x3 kernel over 3 channels"
        reasons.append(f"no stem: the sparse subgraph starts at a 3x3 stride-2 CONV_2D over 3 channels; {why}")
        return {"eligible": False, "reasons": reasons, **result, "this_cpu": xnnpack_sparse_cpu()}
    weights, zeros, problem = 0, 0, None
    seen, frontier = set(), [t for stem in stems for t in stem.outputs]
    while frontier and problem is None:
        tensor = frontier.pop()
        readers = consumers.get(tensor, [])
        if tensor in flat.outputs or not readers:
            problem = f"tensor {flat.name(tensor)!r} leaves the model before a spatial MEAN or DEPTH_TO_SPACE"
        for op in readers:
            if op.index in seen or problem is not None:
                continue
            seen.add(op.index)
            if (op.name == "MEAN" and _spatial_mean(flat, op)) or op.name == "DEPTH_TO_SPACE":
                continue  # the two ops a sparse subgraph may end with
            problem = _op_problem(flat, op, producers, consumers)
            if op.name == "CONV_2D" and problem is None:
                count, zero = _zeros(flat, op.inputs[1], densified)
                weights, zeros = weights + count, zeros + zero
            frontier.extend(op.outputs)
    if problem is not None:
        reasons.append(problem)
    result.update(conv1x1_weights=weights, conv1x1_zeros=zeros)
    if weights:
        result["zero_fraction"] = round(zeros / weights, 4)
        if zeros <= MIN_ZERO_FRACTION * weights:
            reasons.append(
                f"only {zeros / weights:.1%} of the 1x1 convolution weights are zero; XNNPACK needs more than 2/3"
            )
    elif problem is None:
        reasons.append("no 1x1 CONV_2D between stem and MEAN: nothing for the sparse kernels to do")
    return {"eligible": not reasons, "reasons": reasons, **result, "this_cpu": xnnpack_sparse_cpu()}


def _is_integer(flat, op):
    return flat.dtype(op.inputs[0]) not in ("float32", "float16")


def _kernel(flat, op):
    """The weight shape of a convolution ``[out, h, w, in]`` (``[1, h, w, c]`` for a depthwise one)."""
    return flat.shape(op.inputs[1]) if len(op.inputs) > 1 else []


def _pads(flat, op, producers):
    """The spatial padding ``[[top, bottom], [left, right]]`` of the ``PAD`` feeding ``op``, or ``None``."""
    producer = producers.get(op.inputs[0])
    if producer is None or flat.ops[producer].name not in ("PAD", "PADV2"):
        return None
    values = flat.values(flat.ops[producer].inputs[1])
    if values is None or np.asarray(values).shape != (4, 2) or np.any(values[[0, 3]]):
        return None
    return np.asarray(values)[1:3].tolist()


def _stem_problem(flat, op, producers):
    if op.name != "CONV_2D" or _kernel(flat, op)[1:] != [3, 3, 3]:
        return f"op #{op.index} {op.name} is not a 3x3 convolution over 3 channels"
    options = flat.options(op.index)
    if (options.strideH, options.strideW) != (2, 2) or (options.dilationHFactor, options.dilationWFactor) != (1, 1):
        return f"op #{op.index} CONV_2D has stride {options.strideH}x{options.strideW} (needs 2x2, no dilation)"
    if options.padding == _SAME:
        return f"op #{op.index} CONV_2D has SAME padding; use ZeroPadding2D(1) and padding='valid'"
    if _pads(flat, op, producers) != [[1, 1], [1, 1]]:
        return f"op #{op.index} CONV_2D is not padded by one on each side (ZeroPadding2D(1), padding='valid')"
    return None


def _op_problem(flat, op, producers, consumers):
    """Why XNNPACK's sparse path cannot take ``op``, or ``None``."""
    label = f"op #{op.index} {op.name}"
    if op.name == "CONV_2D":
        options = flat.options(op.index)
        if _kernel(flat, op)[1:3] != [1, 1] or (options.strideH, options.strideW) != (1, 1):
            return f"{label} is not a 1x1 stride-1 convolution (the only kind inside the sparse subgraph)"
        return None
    if op.name == "DEPTHWISE_CONV_2D":
        options, size = flat.options(op.index), _kernel(flat, op)[1:3]
        if size not in ([3, 3], [5, 5]) or options.depthMultiplier not in (0, 1):
            return f"{label} has a {size} kernel or depth multiplier {options.depthMultiplier} (needs 3x3 or 5x5, 1)"
        if options.strideH != options.strideW or options.strideH not in (1, 2):
            return f"{label} has stride {options.strideH}x{options.strideW} (needs 1x1 or 2x2)"
        if options.padding == _SAME:
            return f"{label} has SAME padding; XNNPACK's sparse path needs it explicit (ZeroPadding2D, 'valid')"
        half = size[0] // 2
        if _pads(flat, op, producers) != [[half, half], [half, half]]:
            return f"{label} is not padded by {half} on each side"
        return None
    if op.name in ("PAD", "PADV2"):
        readers = consumers.get(op.outputs[0], [])
        if all(reader.name == "DEPTHWISE_CONV_2D" for reader in readers):
            return None  # XNNPACK folds it into the convolution, checked there
        return f"{label} feeds something other than a depthwise convolution"
    if op.name in ("ADD", "MUL"):
        shapes = [flat.shape(t) for t in op.inputs]
        if all(
            len(shape) == 4 or (flat.is_constant(t) and sum(d != 1 for d in shape) <= 1)
            for t, shape in zip(op.inputs, shapes)
        ):
            return None
        return f"{label} has inputs of shapes {shapes} (needs 4-D tensors, or a scalar or vector constant)"
    if op.name in _UNARY or op.name == "RESIZE_BILINEAR":
        return None
    return f"{label} is not an operator XNNPACK runs sparsely"


def _spatial_mean(flat, op):
    axes = flat.values(op.inputs[1])
    return axes is not None and sorted(int(a) % 4 for a in np.ravel(axes)) == [1, 2]


def _zeros(flat, tensor, densified):
    """``(weights, zeros)`` of a convolution's weight tensor, dense or stored sparsely."""
    count = int(np.prod(flat.shape(tensor)))
    if tensor in densified:
        return count, count - flat.stored_elements(densified[tensor])
    values = flat.values(tensor)
    return count, (int(np.sum(values == 0)) if values is not None else 0)


def xnnpack_sparse_cpu(cpuinfo_path: str = "/proc/cpuinfo", machine: str | None = None) -> dict[str, Any]:
    """Whether XNNPACK takes its sparse path on this CPU, for an eligible file.

    Args:
        cpuinfo_path: Where Linux lists the CPU's flags (read on x86 only).
        machine: The architecture as ``platform.machine()`` names it (default: this one's).

    Returns:
        ``{"sparse_kernels": True, False or None, "reason": str}``: False on x86
        with AVX (XNNPACK keeps its dense kernels there), True on Arm and on x86
        without AVX, None where the architecture or its flags are unknown.

    >>> xnnpack_sparse_cpu(machine="aarch64")["sparse_kernels"]
    True
    """
    machine = (machine or platform.machine()).lower()
    if machine.startswith(("arm", "aarch64")):
        return {"sparse_kernels": True, "reason": f"{machine}: XNNPACK's Arm builds have sparse kernels"}
    if machine not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return {"sparse_kernels": None, "reason": f"{machine}: not known to this check"}
    flags = cpu_flags(cpuinfo_path)
    if flags is None:
        return {"sparse_kernels": None, "reason": f"{machine}: CPU flags unknown ({cpuinfo_path} unreadable)"}
    if "avx" in flags:
        return {
            "sparse_kernels": False,
            "reason": f"{machine} with AVX: XNNPACK's x86 sparse kernels are SSE only and its x86 builds keep "
            "the dense kernels on AVX CPUs, so a sparse file runs densified here",
        }
    return {"sparse_kernels": True, "reason": f"{machine} without AVX: XNNPACK uses its SSE sparse kernels"}


def densified_fully_connected(flatbuffer) -> list:
    """The FULLY_CONNECTED ops of a file whose weights a DENSIFY op decodes, by weight name (or op index)."""
    file = TFLiteFlatbuffer(flatbuffer)
    densified = {op.outputs[0] for op in file.ops if op.name == "DENSIFY"}
    return [
        file.name(op.inputs[1]) or f"op {op.index}"
        for op in file.ops
        if op.name == "FULLY_CONNECTED" and op.inputs[1] in densified
    ]


def densified_problem(model_name: str, mode: str, flatbuffer) -> str | None:
    """Why an integer file with ``sparse_weights=True`` would not load under XNNPACK, or ``None``.

    An integer ``FULLY_CONNECTED`` whose weights a ``DENSIFY`` op decodes at run
    time fails to delegate under LiteRT's default XNNPACK delegate.
    """
    readers = densified_fully_connected(flatbuffer)
    if not readers:
        return None
    return (
        f"The {mode} file of model {model_name!r} with sparse_weights=True stores the weights of "
        f"FULLY_CONNECTED op(s) ({', '.join(readers[:3])}) for a DENSIFY op, and LiteRT's XNNPACK delegate "
        "cannot prepare an integer FULLY_CONNECTED whose weights are decoded at run time: the file would not "
        "load ('failed to delegate FULLY_CONNECTED node'). Convert it with sparse_weights=False (gzip still "
        "shrinks the zeros), or store sparse weights in a float32 file. Received: sparse_weights=True, "
        f"mode={mode!r}"
    )
