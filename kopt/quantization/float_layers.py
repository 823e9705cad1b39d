"""Leave chosen layers in float: which layers ``quantize_model(..., float_layers=...)`` keeps out of QAT.

A fully integer file is what microcontrollers and NPUs need, and kopt's default.
On a CPU, though, an int8 kernel is not always faster than its float one: on x86
XNNPACK the first convolution of an image model (3 input channels) runs several
times slower in int8, since XNNPACK has a dedicated float kernel for it and none in
int8 (``benchmarks/int8_ops.py`` times each layer both ways). Leaving such a layer
in float keeps the rest of the file int8, with one quantize op after it. (On Xeons
with Intel AMX, most of int8's loss comes from XNNPACK's AMX kernels instead:
:func:`tflite_export.refuse_amx`; the float stem still saves 10% at 96x96 there.)

A named layer takes along what TFLite computes inside it: the BatchNormalization
folded into it and the ReLU fused into it stay float too, so the float part ends
where the file's op ends.

Example:

>>> import keras
>>> inputs = keras.Input((8, 8, 3))
>>> x = keras.layers.Conv2D(4, 3, name="stem")(inputs)
>>> x = keras.layers.BatchNormalization(name="stem_bn")(x)
>>> x = keras.layers.ReLU(name="stem_relu")(x)
>>> x = keras.layers.Conv2D(4, 1, name="conv")(x)
>>> model = keras.Model(inputs, x)
>>> sorted(float_group(model, ["stem"]))
['stem', 'stem_bn', 'stem_relu']

``kopt.quantization.quantize_model(model, float_layers=["stem"])`` quantizes the rest.

Where a float layer can stay float in the file: the TFLite converter makes an op
int8 when both its input and its output carry int8 ranges and it has an int8
kernel, whatever the model asked (tensorflow/model-optimization#523). A named
layer at the model's input or output, or next to another float layer, keeps
float; one read from an int8 layer and read by int8 layers, with nothing float
beside it, becomes int8 with weights the converter rounds itself.
:func:`requantized_by_converter` lists those, and ``quantize_model`` warns of them.
"""

import warnings
from collections.abc import Sequence

import keras

from kopt.quantization import transforms
from kopt.quantization.quantize_config import NoOpQuantizeConfig
from kopt.quantization.quantize_layer import QuantizeLayer
from kopt.quantization.wrapper import QuantizeWrapper
from kopt.utils import model_graph

__all__ = ["float_group", "float_units", "requantized_by_converter", "warn_if_requantized"]


def float_group(model: keras.Model, float_layers: Sequence[str]) -> set[str]:
    """The named layers with the BatchNormalization folded into and the ReLU fused into each.

    Args:
        model: A Sequential or functional ``keras.Model`` (not yet annotated).
        float_layers: Names of layers of ``model``.

    Returns:
        The names of every layer to leave in float.

    Raises:
        ValueError: Naming the first name ``model`` has no layer of, or a
            ``float_layers`` given as one string.
    """
    return set().union(*float_units(model, float_layers).values())


def float_units(model: keras.Model, float_layers: Sequence[str]) -> dict[str, set[str]]:
    """``{name: the layers TFLite computes in that layer's op}`` for each name of ``float_layers``.

    Raises:
        ValueError: As :func:`float_group`.
    """
    if isinstance(float_layers, str):
        raise ValueError(f"float_layers must be a list of layer names. Received: float_layers={float_layers!r}")
    names = {layer.name for layer in model.layers}
    unknown = [name for name in float_layers if name not in names]
    if unknown:
        raise ValueError(
            f"float_layers names layers model {model.name!r} does not have: {unknown}. Received: "
            f"float_layers={list(float_layers)}"
        )
    plan = transforms.plan(model)
    readers = model_graph.consumers(model)
    units = {}
    for name in float_layers:
        unit = units[name] = {name}
        folded = plan.folds.get(name)
        if folded is not None:
            unit.add(folded)
        if name in plan.fused:
            unit.update(readers.get(folded or name, []))
    return units


def requantized_by_converter(qat_model: keras.Model, units: dict[str, set[str]]) -> list[str]:
    """The names of ``units`` whose op reads only int8 tensors and is read only by int8 layers.

    Args:
        qat_model: The quantization-aware model built with these layers in float.
        units: :func:`float_units` of the float model.

    Returns:
        The names, in the order of ``units``, that the converter would make
        int8 if TFLite has an int8 kernel for their op (see the module docstring).
    """
    config = qat_model.get_config()
    producers = {
        name: {p for call in calls for p in call} for name, calls in model_graph.inbound_layers(config).items()
    }
    readers = model_graph.consumers(qat_model)
    layers = {layer.name: layer for layer in qat_model.layers}
    in_units = set().union(*units.values()) if units else set()

    def ends(unit, step):
        # The layers met first across the unit's edge, passing through unwrapped layers that carry a
        # range unchanged (Flatten, Reshape); a name with no layer is the model's output.
        seen, frontier, found = set(), [n for m in unit for n in step.get(m, ()) if n not in unit], set()
        while frontier:
            name = frontier.pop()
            if name in seen:
                continue
            seen.add(name)
            layer = layers.get(name)
            stops = (keras.layers.InputLayer, QuantizeLayer, QuantizeWrapper)
            if layer is None or name in in_units or isinstance(layer, stops):
                found.add(name)
            else:
                frontier.extend(step.get(name, ()))
        return found

    def writes_int8(name):
        layer = layers.get(name)
        if isinstance(layer, QuantizeWrapper):
            return not isinstance(layer.quantize_config, NoOpQuantizeConfig)
        return isinstance(layer, QuantizeLayer)

    found = []
    for name, unit in units.items():
        inputs, outputs = ends(unit, producers), ends(unit, readers)
        # The float op's input carries an int8 writer's range, and its output the range a quantize op sets.
        quantized_after = all(isinstance(layers.get(r), QuantizeLayer) for r in outputs)
        if inputs and outputs and all(map(writes_int8, inputs)) and quantized_after:
            found.append(name)
    return found


def warn_if_requantized(qat_model: keras.Model, units: dict[str, set[str]]) -> keras.Model:
    """Warns, naming them, of the float layers :func:`requantized_by_converter` finds; returns ``qat_model``."""
    requantized = requantized_by_converter(qat_model, units) if units else []
    if requantized:
        warnings.warn(
            f"float_layers={requantized} will be int8 in the TFLite file after all: each reads only int8 tensors "
            "and is read only by int8 layers, and the converter quantizes such an op when TFLite has an int8 kernel "
            "for it, rounding its weights itself (tensorflow/model-optimization#523). Leave a layer beside it in "
            "float too, or only layers at the model's input or output, to keep it float.",
            stacklevel=3,
        )
    return qat_model
