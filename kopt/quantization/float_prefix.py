"""A measured float prefix: leave the front of a network in float where that makes its int8 file faster.

An int8 file is not always faster than its float one. On x86 XNNPACK the layers
that lose are at the front of image networks: the first convolution (3 input
channels, for which XNNPACK has a dedicated float kernel and no int8 one) and the
narrow 1x1 convolutions on large feature maps, which on Xeons with Intel AMX run
on tiles 64 output channels wide (``benchmarks/int8_ops.py`` times each layer both
ways). Those layers hold a few percent of the weights, so leaving them in float
costs little size and no accuracy, and the file keeps one quantize op, where
the float part ends.

``plan_float_prefix`` measures rather than guesses, since where int8 starts to
win depends on the CPU:

1. :func:`prefix_cuts` lists the places where exactly one tensor crosses from
   the front of the network (a layer and everything it depends on) to the rest,
   into a convolution or dense layer, and not inside an op TFLite fuses: one
   quantize op can sit there. The cuts are read from the model's graph, so a
   residual or squeeze-and-excitation branch is never cut through.
2. Cuts whose float part would hold more than ``max_float_share`` of the
   weights are dropped; of the rest, at most ``max_candidates``, spread from the
   first to the last, are tried.
3. For each cut, and for no cut (the fully integer file), a QAT copy of the model
   with that prefix in float (:func:`kopt.quantization.quantize_model`'s
   ``float_layers``) is calibrated on ``representative_data`` and converted; all the
   files and the float32 file are timed in turns on this machine
   (:func:`tflite_export.interleaved_latency`: LiteRT, XNNPACK, 1 thread, batch 1).
4. The plan is the shortest prefix within ``tolerance`` of the fastest file: the
   most integer file that is as fast as any.

Pass the plan's ``float_layers`` to ``quantize_model`` and train as usual. The
plan holds for the CPU it was timed on; time it on (or like) the target. A
microcontroller or an NPU needs a fully integer file: do not use a prefix there.

Example:

>>> import keras, numpy as np
>>> inputs = keras.Input((16, 16, 3))
>>> x = keras.layers.Conv2D(8, 3, strides=2, name="stem")(inputs)
>>> x = keras.layers.ReLU(name="stem_relu")(x)
>>> x = keras.layers.Conv2D(16, 1, name="expand")(x)
>>> outputs = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
>>> model = keras.Model(inputs, outputs)
>>> prefix_cuts(model)
['stem_relu', 'pool']
>>> plan = plan_float_prefix(model, np.zeros((4, 16, 16, 3), "float32"), rounds=1, calls=5, max_float_share=0.9)
>>> [row["cut"] for row in plan["candidates"]]
[None, 'stem_relu']
"""

import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from kopt.quantization import schemes
from kopt.quantization import transforms
from kopt.utils import model_graph

__all__ = ["CALIBRATION_EXAMPLES", "plan_float_prefix", "prefix_cuts"]

CALIBRATION_EXAMPLES = 64

_log = logging.getLogger(__name__)


def prefix_cuts(model: keras.Model) -> list[str]:
    """The layers after which a float prefix can end with one quantize op.

    A cut after layer ``L`` takes ``L`` and every layer it depends on (the prefix).
    It qualifies when no layer of the prefix but ``L`` is read from outside it (one
    tensor crosses), ``L`` hands its output to a convolution or dense layer, no
    BatchNormalization is folded into ``L`` nor activation fused into it (TFLite
    computes those in ``L``'s op, which a cut cannot split), and ``L``'s output is
    not a model output.

    Args:
        model: A Sequential or functional ``keras.Model``.

    Returns:
        Layer names, front to back (by the size of their prefix).

    Raises:
        ValueError: For a model that is not a Sequential or functional model.
    """
    return list(_prefixes(_graph(model)))


def plan_float_prefix(
    model: keras.Model,
    representative_data: Any,
    *,
    scheme: Any = None,
    max_float_share: float = 0.05,
    max_candidates: int = 8,
    tolerance: float = 0.02,
    rounds: int = 7,
    calls: int = 100,
    amx: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Times int8 files of ``model`` with float prefixes of several lengths; returns the fastest's layers.

    Args:
        model: A built float Sequential or functional ``keras.Model``, one input.
        representative_data: Inputs that calibrate each candidate's ranges, as
            :func:`kopt.quantization.calibrate` takes them (the first
            :data:`CALIBRATION_EXAMPLES` are used: latency does not depend on them).
        scheme: The :class:`QuantizeScheme` (or its name) the model will be
            trained with, one that exports int8 files (``"8bit"``, the default;
            binary, ternary and the collaborative schemes); every candidate is
            quantized with it, as its file will be.
        max_float_share: Largest share of the weights a prefix may leave in
            float, in (0, 1].
        max_candidates: Most prefixes tried (besides none); at least 1.
        tolerance: The plan is the shortest prefix at most this fraction slower
            than the fastest file; at least 0.
        rounds / calls: The interleaved timing (:func:`tflite_export.interleaved_latency`).
        amx: ``False`` times with Intel AMX refused, as XNNPACK runs on CPUs
            without it (phones, AMD).
        log: Called with a line of progress per file; default: the module logger.

    Returns:
        ``{"float_layers": [...], "cut": name or None, "float_share", "ms", "int8_ms", "float_ms",
        "candidates": [{"cut", "float_layers", "float_params", "float_share", "ms"}],
        "amx", "settings"}``. ``float_layers`` is empty when no prefix beats the
        fully integer file by more than ``tolerance``.

    Raises:
        ValueError: Naming the argument and value, for a bad setting or a scheme
            that does not export int8; before anything is converted.
    """
    import tflite_export
    from kopt.quantization.api import quantize_model
    from kopt.quantization.ptq import calibrate

    _check(max_float_share, max_candidates, tolerance)
    scheme = schemes.get(scheme)
    if scheme.export_mode != "int8":
        raise ValueError(
            f"plan_float_prefix times int8 files; scheme {type(scheme).__name__} exports {scheme.export_mode!r}. "
            f"Received: scheme={scheme!r}"
        )
    log = log or _log.info
    model = _graph(model)
    total = max(model.count_params(), 1)
    prefixes = _prefixes(model)
    weights = {cut: sum(model.get_layer(name).count_params() for name in names) for cut, names in prefixes.items()}
    cuts = [cut for cut in prefixes if weights[cut] / total <= max_float_share]
    if len(cuts) > max_candidates:
        cuts = [cuts[index] for index in np.unique(np.linspace(0, len(cuts) - 1, max_candidates).round().astype(int))]
    candidates = [None, *cuts]
    prefixes[None], weights[None] = [], 0
    with tempfile.TemporaryDirectory(prefix="kopt-float-prefix-") as workdir:
        # Keys: the candidates' positions, and -1 for the float file (layer names could be anything).
        paths = {-1: tflite_export.convert(model, os.path.join(workdir, "float32.tflite"))}
        for number, cut in enumerate(candidates):
            qat = quantize_model(model, scheme=scheme, float_layers=prefixes[cut])
            calibrate(qat, representative_data, max_examples=CALIBRATION_EXAMPLES)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "still computes in float": the prefix, on purpose
                paths[number] = tflite_export.convert(qat, os.path.join(workdir, f"cut{number}.tflite"), mode="int8")
            log(f"plan_float_prefix: converted {number + 1}/{len(candidates)} (float up to {cut or 'nothing'})")
        times = tflite_export.interleaved_latency(paths, rounds=rounds, calls=calls, amx=amx)
    rows = [
        {
            "cut": cut,
            "float_layers": len(prefixes[cut]),
            "float_params": int(weights[cut]),
            "float_share": weights[cut] / total,
            "ms": times[number],
        }
        for number, cut in enumerate(candidates)
    ]
    fastest = min(row["ms"] for row in rows)
    chosen = next(row for row in rows if row["ms"] <= fastest * (1 + tolerance))
    log(
        f"plan_float_prefix: float up to {chosen['cut'] or 'nothing'}: {chosen['ms']:.4f} ms against "
        f"{times[0]:.4f} ms fully integer and {times[-1]:.4f} ms float32"
    )
    return {
        "float_layers": prefixes[chosen["cut"]],
        "cut": chosen["cut"],
        "float_share": chosen["float_share"],
        "ms": chosen["ms"],
        "int8_ms": times[0],
        "float_ms": times[-1],
        "candidates": rows,
        "amx": tflite_export.amx_state(),
        "settings": {
            "scheme": type(scheme).__name__,
            "max_float_share": max_float_share,
            "max_candidates": max_candidates,
            "tolerance": tolerance,
            "rounds": rounds,
            "calls": calls,
            "amx": amx,
        },
    }


def _check(max_float_share, max_candidates, tolerance):
    if (
        isinstance(max_float_share, bool)
        or not isinstance(max_float_share, (int, float))
        or not (0 < max_float_share <= 1)
    ):
        raise ValueError(f"max_float_share must be a number in (0, 1]. Received: max_float_share={max_float_share!r}")
    if isinstance(max_candidates, bool) or not isinstance(max_candidates, int) or max_candidates < 1:
        raise ValueError(
            f"max_candidates must be an integer of at least 1. Received: max_candidates={max_candidates!r}"
        )
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ValueError(f"tolerance must be a number of at least 0. Received: tolerance={tolerance!r}")


def _graph(model):
    """``model`` as one flat functional graph, named as ``quantize_model`` will see it."""
    from tflite_export.cloning import inline_nested_models

    if isinstance(model, keras.Sequential):
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a Sequential or functional keras.Model. Received: model={model!r}")
    try:
        model.get_config()["output_layers"]
    except (KeyError, NotImplementedError, TypeError) as err:
        raise ValueError(
            f"plan_float_prefix reads the graph of a Sequential or functional model; {model.name!r} is neither."
        ) from err
    if any(isinstance(layer, keras.Model) for layer in model.layers):
        # quantize_model calls nested models' layers directly (ConvNeXt's stem); so do the cuts.
        return inline_nested_models(model, action="plan a float prefix of", advice="")
    return model


def _compute_layers(model):
    from tflite_export.layer_latency import TIMED_LAYERS

    return {layer.name for layer in model.layers if isinstance(layer, TIMED_LAYERS)}


def _prefixes(model):
    """``{cut: [the layers of its prefix, in the model's order, inputs left out]}``, front to back (:func:`prefix_cuts`)."""
    readers = model_graph.consumers(model)
    producers = _producers(readers)
    computes = _compute_layers(model)
    merged = transforms.plan(model)
    found = []
    for layer in model.layers:
        name = layer.name
        if isinstance(layer, keras.layers.InputLayer) or name in merged.folds or name in merged.fused:
            continue
        if model_graph.OUTPUT in readers[name] or not any(reader in computes for reader in readers[name]):
            continue
        prefix = _ancestors(producers, name)
        if all(set(readers[inner]) <= prefix for inner in prefix - {name}):
            found.append((len(prefix), name, prefix))
    order = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return {
        name: [inner for inner in order if inner in prefix] for _, name, prefix in sorted(found, key=lambda e: e[0])
    }


def _producers(readers):
    """``{layer: {layers it reads}}`` from :func:`model_graph.consumers`' ``{layer: [its readers]}``."""
    producers = {}
    for producer, names in readers.items():
        for reader in names:
            producers.setdefault(reader, set()).add(producer)
    return producers


def _ancestors(producers, name):
    """``name`` and every layer it depends on, inputs included."""
    found, stack = set(), [name]
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(producers.get(current, ()))
    return found


def _prefix(model, cut):
    """The layers of the prefix ending at ``cut`` (one of :func:`prefix_cuts`); none for ``None``."""
    if cut is None:
        return []
    prefixes = _prefixes(_graph(model))
    if cut not in prefixes:
        raise ValueError(f"cut must be one of prefix_cuts(model) of model {model.name!r}. Received: cut={cut!r}")
    return prefixes[cut]
