"""Milliseconds of each convolution and dense layer of a Keras model, each timed alone in LiteRT.

FLOPs and parameters say little about where a network spends its time on a CPU: a
3x3 convolution on a large, narrow feature map, a depthwise convolution or a 1x1
convolution of 8 channels costs far more per FLOP than a wide layer deep in the
network. ``layer_latencies`` measures it: every ``Conv1D/2D``, ``DepthwiseConv2D``,
``SeparableConv2D``, ``Dense``, ``LSTM``, ``GRU`` and ``SimpleRNN`` layer (also in ``Bidirectional``) becomes a
one-layer model with the layer's own configuration and input shape, converted to
float32 as :func:`tflite_export.convert` writes it by default (a recurrent layer as
its loop, at batch 1) and timed with
:func:`tflite_export.benchmark` (XNNPACK on). Layers alike in class,
configuration and input shape are converted and timed once.

Each time is the layer's median less the median of a file that does almost nothing
(one 1-to-1 Dense layer): that part is the interpreter's own cost of an
``invoke()`` (about half a microsecond here), which a layer inside a network does
not pay, and which would otherwise weigh most on the smallest layers.

The sum of the layers' times is close to, not equal to, the whole file's: a file
also runs the layers not timed here (additions, pooling, activations that are not
fused) and its operators share caches. A recurrent layer's loop costs much the
same per step at any width; :func:`fixed_latencies` measures that part. Latency-aware channel pruning
(``kopt.pruning.latency_channel_plan``) needs only where the milliseconds are,
layer against layer.

Example:

>>> import keras
>>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv"),
...                           keras.layers.Flatten(), keras.layers.Dense(2, name="head")])
>>> times = layer_latencies(model, runs=3, warmup=1)
>>> sorted(times), all(value >= 0 for value in times.values())
(['conv', 'head'], True)
"""

import json
import os
import tempfile
from collections.abc import Callable

import keras

from tflite_export.benchmark import benchmark
from tflite_export.converter import convert

__all__ = ["TIMED_LAYERS", "fixed_latencies", "layer_latencies"]

# Layers whose cost grows with their input and output channels.
TIMED_LAYERS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.Dense,
    keras.layers.LSTM,
    keras.layers.GRU,
    keras.layers.SimpleRNN,
    keras.layers.Bidirectional,
)
_RECURRENT = (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)


def layer_latencies(
    model: keras.Model, *, runs: int = 100, warmup: int = 10, threads: int = 1, log: Callable[[str], None] | None = None
) -> dict[str, float]:
    """Median milliseconds of each timed layer of ``model``, run alone at batch 1.

    Args:
        model: A built ``keras.Model``; each timed layer must be called once
            (its input shape is read from the model's graph).
        runs: Timed calls per layer, at least 1.
        warmup: Untimed calls before them, at least 0.
        threads: Interpreter threads, at least 1.
        log: Optional ``callable(str)`` told of each layer kind as it is timed.

    Returns:
        ``{layer name: median milliseconds, less one invoke's}`` for every timed
        layer, in the model's layer order (at least 0).

    Raises:
        ValueError: If ``model`` has no timed layer, or a timed layer's input
            shape is unknown (a shared or unconnected layer) or not static,
            naming the layer.
    """
    layers = [layer for layer in model.layers if isinstance(layer, TIMED_LAYERS)]
    if not layers:
        raise ValueError(
            f"model {model.name!r} has no layer layer_latencies times "
            f"({', '.join(cls.__name__ for cls in TIMED_LAYERS)})."
        )
    signatures = {layer.name: _signature(layer) for layer in layers}
    times = _time(list(signatures.values()), runs, warmup, threads, log)
    return {name: times[signature] for name, signature in signatures.items()}


def fixed_latencies(
    model: keras.Model,
    *,
    latencies: dict[str, float] | None = None,
    runs: int = 100,
    warmup: int = 10,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Milliseconds of each recurrent layer's time that do not shrink with its units.

    A recurrent layer runs as a loop, and each step's operators (slicing the
    step, the gates' elementwise work, the loop itself) cost about the same at any
    width: LSTM(64) on 28 steps of 28 features takes about 0.69 of its time with
    half its units, not the quarter to third its multiply-accumulates would say.
    Each ``LSTM``, ``GRU`` and ``SimpleRNN`` layer (and ``Bidirectional`` of one)
    is timed again with half its units, and its time split into a fixed part and a part that scales as its
    multiply-accumulates do: ``ms = fixed + (ms - fixed) * ((1 - r) * u + r * u ** 2)``
    for a fraction ``u`` of the units kept, ``r = units / (inputs + units)`` the
    recurrent kernel's share. :func:`kopt.pruning.latency_channel_plan` models a
    pruned recurrent layer this way.

    Args:
        model: A built ``keras.Model``, as for :func:`layer_latencies`.
        latencies: :func:`layer_latencies`' result for ``model``; ``None`` times
            the recurrent layers at their own width too.
        runs: Timed calls per layer, at least 1.
        warmup: Untimed calls before them, at least 0.
        threads: Interpreter threads, at least 1.
        log: Optional ``callable(str)`` told of each layer kind as it is timed.

    Returns:
        ``{layer name: fixed milliseconds}`` for every recurrent layer of
        ``model`` (between 0 and the layer's time; 0 for a layer of one unit,
        which has no half); empty if it has none.

    Raises:
        ValueError: As :func:`layer_latencies`, or if ``latencies`` lacks a
            recurrent layer of ``model``.
    """
    recurrent = [layer for layer in model.layers if _units(layer) is not None]
    missing = [layer.name for layer in recurrent if latencies is not None and layer.name not in latencies]
    if missing:
        raise ValueError(f"latencies has no time for the recurrent layers {missing} of model {model.name!r}.")
    # A single unit has no half to time, and no unit to remove: none of its time is told apart.
    fixed = {layer.name: 0.0 for layer in recurrent if _units(layer) < 2}
    layers = [layer for layer in recurrent if _units(layer) >= 2]
    if not layers:
        return fixed
    full = {layer.name: _signature(layer) for layer in layers}
    half = {name: _halved(signature) for name, signature in full.items()}
    wanted = list(half.values()) + (list(full.values()) if latencies is None else [])
    times = _time(wanted, runs, warmup, threads, log)
    for layer in layers:
        whole = times[full[layer.name]] if latencies is None else float(latencies[layer.name])
        units, inputs = _units(layer), int(layer.input.shape[-1])
        kept = (units // 2) / units
        share = units / (inputs + units)
        scale = (1 - share) * kept + share * kept**2
        # whole = fixed + variable, halved = fixed + variable * scale.
        fixed[layer.name] = min(max((times[half[layer.name]] - scale * whole) / (1 - scale), 0.0), whole)
    return fixed


def _time(signatures, runs, warmup, threads, log):
    """``{signature: median ms less one invoke's}`` of each distinct one-layer model."""
    distinct = list(dict.fromkeys(signatures))
    times = {}
    with tempfile.TemporaryDirectory(prefix="kopt-layer-latency-") as workdir:
        inputs = keras.Input((1,))
        idle = convert(keras.Model(inputs, keras.layers.Dense(1)(inputs)), os.path.join(workdir, "idle.tflite"))
        floor = benchmark(idle, runs=runs, warmup=warmup, threads=threads, xnnpack=True)["xnnpack"]["median_ms"]
        for number, signature in enumerate(distinct):
            class_name, shape, config = signature
            if log is not None:
                log(f"timing {class_name} on input {shape} ({number + 1} of {len(distinct)})")
            layer = getattr(keras.layers, class_name).from_config(json.loads(config))
            inputs = keras.Input(shape)
            path = convert(keras.Model(inputs, layer(inputs)), os.path.join(workdir, f"{number}.tflite"), batch_size=1)
            result = benchmark(path, runs=runs, warmup=warmup, threads=threads, xnnpack=True)
            times[signature] = max(result["xnnpack"]["median_ms"] - floor, 0.0)
    return times


def _units(layer):
    """Units of an LSTM, GRU or SimpleRNN, or of a Bidirectional around one; None for any other layer."""
    inner = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
    return int(inner.units) if isinstance(inner, _RECURRENT) else None


def _halved(signature):
    class_name, shape, config = signature
    config = json.loads(config)
    # A Bidirectional's directions are configs of their own (the backward one only when given).
    for owner in [config.get(key, {}).get("config", {}) for key in ("layer", "backward_layer")] + [config]:
        if "units" in owner:
            owner["units"] = owner["units"] // 2
    return class_name, shape, json.dumps(config, sort_keys=True, default=str)


def _signature(layer):
    try:
        shape = tuple(layer.input.shape[1:])
    except (AttributeError, ValueError) as err:
        raise ValueError(
            f"layer_latencies needs the input shape of layer {layer.name!r} ({type(layer).__name__}): it is "
            f"shared or not connected ({err})"
        ) from err
    if any(dim is None for dim in shape):
        raise ValueError(
            f"layer_latencies needs a static input shape; layer {layer.name!r} has {shape}"
            + (
                " (a sequence's time depends on its length: build the model with a fixed one)."
                if len(shape) == 2
                else "."
            )
        )
    config = {key: value for key, value in layer.get_config().items() if key != "name"}
    return type(layer).__name__, shape, json.dumps(config, sort_keys=True, default=str)
