"""FLOPs of convolution and dense layers, per example, for pruning reports.

One multiply-accumulate (MAC) counts as two FLOPs. Only the layers that dominate
the cost of a CNN or MLP are counted:

* ``Dense``: ``2 * in * out`` per output position (a Dense on a ``(N, T, C)``
  tensor runs ``T`` times).
* ``Conv1D/2D/3D``: ``2 * prod(kernel_size) * (in / groups) * out * prod(output spatial)``.
* ``DepthwiseConv1D/2D``: ``2 * prod(kernel_size) * in * depth_multiplier * prod(output spatial)``.
* ``SeparableConv1D/2D``: its depthwise part plus its pointwise ``1x1`` part, both
  at the output positions.
* ``Conv1D/2D/3DTranspose``: ``2 * prod(kernel_size) * in * out * prod(input spatial)``.
* ``LSTM``, ``GRU`` and ``SimpleRNN``: ``2 * timesteps * (in + units) * gates * units``,
  the input and the recurrent kernel at every step (``gates``: 4, 3 and 1), also
  inside ``Bidirectional`` (both directions). A sequence of unknown length has
  no per-example count and is refused, as a convolution on one is.

Biases, normalization, activations, pooling and merges are left out (they add a
few percent at most); every other layer counts 0.

Example:

>>> import keras
>>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv")])
>>> layer_flops(model)["conv"] == 2 * 3 * 3 * 3 * 4 * 6 * 6
True
"""

import math

import keras

from kopt.utils import layer_kinds

_OUTPUT_POSITIONED = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)
_INPUT_POSITIONED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
_RECURRENT = (*layer_kinds.RECURRENT, keras.layers.Bidirectional)
_KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")
_RECURRENT_KERNEL_NAMES = ("kernel", "recurrent_kernel")


def layer_flops(model: keras.Model) -> dict:
    """FLOPs per example of every layer of ``model``.

    Args:
        model: A built ``keras.Model``; nested models are counted layer by layer,
            their layers named ``"outer/inner"``.

    Returns:
        ``{layer name: FLOPs}`` for every layer, 0 for layers that are not counted.

    Raises:
        ValueError: If a counted layer is shared (called more than once), since its
            output shape is then ambiguous.
    """
    flops = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            for name, value in layer_flops(layer).items():
                flops[f"{layer.name}/{name}"] = value
            continue
        flops[layer.name] = _flops(layer)
    return flops


def count_flops(model: keras.Model) -> int:
    """Total FLOPs per example of ``model``; see :func:`layer_flops`."""
    return int(sum(layer_flops(model).values()))


def _flops(layer):
    if isinstance(layer, _RECURRENT):
        return _recurrent_flops(layer)
    if not isinstance(layer, _OUTPUT_POSITIONED + _INPUT_POSITIONED):
        return 0
    try:
        shape = layer.input.shape if isinstance(layer, _INPUT_POSITIONED) else layer.output.shape
    except (AttributeError, ValueError) as err:
        raise ValueError(
            f"cannot count FLOPs of layer {layer.name!r} ({type(layer).__name__}): it is shared "
            f"or not connected, so its output shape is not known ({err})"
        ) from err
    positions = shape[1:-1]
    if any(dim is None for dim in positions):
        raise ValueError(f"cannot count FLOPs of layer {layer.name!r}: its spatial shape {tuple(shape)} is not static")
    macs_per_position = sum(math.prod(v.shape) for v in layer.weights if v.name in _KERNEL_NAMES)
    return int(2 * macs_per_position * math.prod(positions))


def _recurrent_flops(layer):
    # Every step multiplies the step's input by the input kernel and the state by the
    # recurrent kernel: one MAC per entry of each, per step. A Bidirectional layer's
    # weights are its two directions'.
    if not layer_kinds.recurrent_directions(layer):  # a Bidirectional around another kind of RNN
        return 0
    try:
        shape = layer.input.shape
    except (AttributeError, ValueError) as err:
        raise ValueError(
            f"cannot count FLOPs of layer {layer.name!r} ({type(layer).__name__}): it is shared "
            f"or not connected, so its input shape is not known ({err})"
        ) from err
    if shape[1] is None:
        raise ValueError(
            f"cannot count FLOPs of layer {layer.name!r} ({type(layer).__name__}): its input {tuple(shape)} "
            "has no static number of timesteps; build the model with a fixed sequence length"
        )
    macs_per_step = sum(math.prod(v.shape) for v in layer.weights if v.name in _RECURRENT_KERNEL_NAMES)
    return int(2 * macs_per_step * shape[1])
