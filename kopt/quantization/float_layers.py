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
"""

from collections.abc import Sequence

import keras

from kopt.quantization import transforms
from kopt.utils import model_graph

__all__ = ["float_group"]


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
    group = set(float_layers)
    for name in float_layers:
        folded = plan.folds.get(name)
        if folded is not None:
            group.add(folded)
        if name in plan.fused:
            group.update(readers.get(folded or name, []))
    return group
