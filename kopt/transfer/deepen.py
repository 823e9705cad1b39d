"""Net2DeeperNet: a new identity layer in a trained network, the model's outputs unchanged.

:func:`deepen` inserts, right after a layer, a layer that computes the
identity: a ``Dense`` with kernel ``I`` and zero bias after a rank-2 output,
or a ``Conv1D``/``Conv2D``/``Conv3D`` (``same`` padding, stride 1) whose kernel
is ``I`` at the centre tap and zero elsewhere after a rank-3/4/5 output (channels last). Every reader of
the layer's output reads the new layer's output instead.

The new layer applies an activation ``phi``, so it computes ``phi(h)`` of the
output ``h`` it reads; that is ``h`` only where ``phi`` is the identity on the
values ``h`` takes (Net2Net's "idempotent" condition, ``phi(phi(x)) = phi(x)``
when ``h`` is itself ``phi``'s output). The allowed activations
(:data:`IDENTITY_ACTIVATIONS`) and where each is the identity:

* ``"linear"``: everywhere, after any layer;
* ``"relu"``: on ``[0, inf)``, after a layer ending in ``relu`` or ``relu6``;
* ``"relu6"``: on ``[0, 6]``, after a layer ending in ``relu6``.

A layer "ends in" the activation of its ``activation`` argument (``Dense``,
convolutions), of an ``Activation`` layer, or ``relu``/``relu6`` for a ``ReLU``
layer with default slope and threshold; any other layer's outputs may take any
value, so only ``"linear"`` follows it. By default the new layer takes the
activation the layer ends in, which must be one of the three.

The Sequential model is rebuilt from its config with the new layer in the list;
a functional one through kopt's cloning walker
(:func:`tflite_export.cloning.clone_graph_model`). Either way the result holds
plain Keras layers, compiled like the original if it was, and the original is
left alone.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu", name="hidden"),
...                          keras.layers.Dense(2, name="head")])
>>> deeper = deepen(model, "hidden")
>>> [layer.name for layer in deeper.layers]
['hidden', 'hidden_identity', 'head']
>>> x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
>>> bool(np.allclose(deeper.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5))
True
"""

import copy
import numbers

import keras
import numpy as np

from kopt.transfer.net2net import identity_kernel
from kopt.utils.model_graph import model_from_own_config
from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_unshared
from tflite_export.cloning import require_graph_model

__all__ = ["IDENTITY_ACTIVATIONS", "deepen"]

# activation -> (low, high): where it is the identity.
IDENTITY_ACTIVATIONS = {"linear": (-np.inf, np.inf), "relu": (0.0, np.inf), "relu6": (0.0, 6.0)}
# What a layer ending in each activation outputs, for the activations above.
_OUTPUT_RANGE = {"linear": (-np.inf, np.inf), "relu": (0.0, np.inf), "relu6": (0.0, 6.0)}
_CONVOLUTIONS = {3: keras.layers.Conv1D, 4: keras.layers.Conv2D, 5: keras.layers.Conv3D}
_ADVICE = "Rebuild it with keras.Model(inputs, outputs) first."


def deepen(
    model: keras.Model,
    after_layer_name: str,
    *,
    activation: str | None = None,
    kernel_size: int = 3,
    name: str | None = None,
) -> keras.Model:
    """Returns a copy of ``model`` with an identity layer right after ``after_layer_name``.

    Args:
        model: A built Sequential or functional ``keras.Model``.
        after_layer_name: The layer (of ``model`` itself, not of a nested
            model, called once, one output) whose output the new layer reads.
        activation: The new layer's activation, one of
            :data:`IDENTITY_ACTIVATIONS` and allowed after that layer (see the
            module docstring); ``None`` (default) takes the layer's own.
        kernel_size: The window side of a new convolution; odd.
        name: The new layer's name; default ``"<after_layer_name>_identity"``.

    Returns:
        A new model (Sequential if ``model`` is) computing what ``model``
        computes, one layer deeper; ``model`` is not changed.

    Raises:
        ValueError: Naming the argument and value, for an unknown or unsuitable
            layer, an activation that would not keep the outputs (with the
            allowed ones), an even ``kernel_size`` or a name already taken.
    """
    require_graph_model(model, action="deepen", advice=_ADVICE)
    layer = _after_layer(model, after_layer_name)
    ends_in = _ends_in(layer)
    activation = _choose_activation(layer, ends_in, activation)
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, numbers.Integral) or kernel_size < 1:
        raise ValueError(f"kernel_size must be a positive odd integer. Received: kernel_size={kernel_size!r}")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, so the identity has a centre tap. Received: kernel_size={kernel_size}")  # fmt: skip
    name = f"{after_layer_name}_identity" if name is None else name
    taken = {other.name for other in model.layers} | {tensor.name for tensor in model.inputs}
    if not isinstance(name, str) or not name or name in taken:
        raise ValueError(f"name must be a layer name not already in model {model.name!r}. Received: name={name!r}")
    identity = _identity_layer(layer, activation, int(kernel_size), name)
    if isinstance(model, keras.Sequential):
        deeper = _deeper_sequential(model, layer, identity)
    else:
        deeper = _deeper_functional(model, layer, identity)
    if model.compiled:
        deeper.compile_from_config(model.get_compile_config())
    return deeper


def _after_layer(model, after_layer_name):
    names = [layer.name for layer in model.layers]
    if not isinstance(after_layer_name, str) or after_layer_name not in names:
        raise ValueError(
            f"after_layer_name must name a layer of model {model.name!r} (not one inside a nested model); its "
            f"layers are {names}. Received: after_layer_name={after_layer_name!r}"
        )
    layer = model.get_layer(after_layer_name)
    if isinstance(model, keras.Sequential):
        return layer
    calls = [node for node in model.get_config()["layers"] if node["name"] == after_layer_name][0]["inbound_nodes"]
    if len(calls) != 1:
        raise ValueError(
            f"Cannot deepen after layer {after_layer_name!r}: it is called {len(calls)} times in the model, so "
            f"'after it' is ambiguous. Received: after_layer_name={after_layer_name!r}"
        )
    if not isinstance(layer.output, keras.KerasTensor):
        raise ValueError(f"Cannot deepen after layer {after_layer_name!r}: it has several outputs. "
                         f"Received: after_layer_name={after_layer_name!r}")  # fmt: skip
    return layer


def _ends_in(layer):
    """The activation ``layer`` ends in, or ``"linear"`` when its outputs may take any value."""
    config = layer.get_config()
    if isinstance(layer, keras.layers.ReLU):
        plain = not config.get("negative_slope") and not config.get("threshold")
        maximum = config.get("max_value")
        if plain and maximum is None:
            return "relu"
        return "relu6" if plain and maximum == 6 else "linear"
    if isinstance(layer, keras.layers.Activation) or "activation" in config:
        activation = config.get("activation")
        return activation if isinstance(activation, str) else "<custom>"
    return "linear"


def _choose_activation(layer, ends_in, activation):
    allowed = [name for name, (low, high) in IDENTITY_ACTIVATIONS.items() if _fits(ends_in, low, high)]
    argument = "activation" if activation is not None else "after_layer_name"
    value = activation if activation is not None else layer.name
    chosen = ends_in if activation is None else activation
    if chosen in allowed:
        return chosen
    if activation is not None and activation not in IDENTITY_ACTIVATIONS:
        reason = f"the new layer computes the identity only with one of {list(IDENTITY_ACTIVATIONS)}"
    elif activation is None and ends_in not in IDENTITY_ACTIVATIONS:
        reason = (
            f"layer {layer.name!r} ends in activation {ends_in!r}, which is not idempotent "
            f"(phi(phi(x)) != phi(x)), so a new layer applying it again would change the outputs"
        )
    else:
        reason = f"{chosen!r} is not the identity on every output of layer {layer.name!r} (it ends in {ends_in!r})"
    raise ValueError(f"{reason}; after this layer pass activation= one of {allowed}. Received: {argument}={value!r}")


def _fits(ends_in, low, high):
    output_low, output_high = _OUTPUT_RANGE.get(ends_in, (-np.inf, np.inf))
    return low <= output_low and output_high <= high


def _identity_layer(layer, activation, kernel_size, name):
    shape = tuple(layer.output.shape)
    channels = shape[-1]
    if channels is None or len(shape) not in (2, *_CONVOLUTIONS):
        raise ValueError(
            f"Cannot deepen after layer {layer.name!r}: its output shape {shape} is not (batch, channels) or a "
            f"channels-last 1D/2D/3D feature map with a known channel count. Received: after_layer_name={layer.name!r}"
        )
    if layer.get_config().get("data_format") == "channels_first":
        raise ValueError(f"Cannot deepen after layer {layer.name!r}: it uses data_format='channels_first'. "
                         f"Received: after_layer_name={layer.name!r}")  # fmt: skip
    options = {"activation": activation, "name": name, "dtype": layer.dtype_policy}
    if len(shape) == 2:
        identity = keras.layers.Dense(channels, **options)
        window = ()
    else:
        identity = _CONVOLUTIONS[len(shape)](channels, kernel_size, padding="same", **options)
        window = (kernel_size,) * (len(shape) - 2)
    identity.build(shape)
    identity.set_weights([identity_kernel(channels, window), np.zeros(channels, np.float32)])
    return identity


def _deeper_sequential(model, layer, identity):
    config = copy.deepcopy(model.get_config())
    position = next(i for i, entry in enumerate(config["layers"]) if entry["config"].get("name") == layer.name)
    config["layers"].insert(position + 1, keras.saving.serialize_keras_object(identity))
    deeper = model_from_own_config(model, config)
    for new in deeper.layers:
        source = identity if new.name == identity.name else model.get_layer(new.name)
        new.set_weights(source.get_weights())
    return deeper


def _deeper_functional(model, layer, identity):
    clones = {}

    def layer_fn(original):
        clones[id(original)] = copy_unshared(original)
        return clones[id(original)]

    def call(node, *args, **kwargs):
        outputs = node(*args, **kwargs)
        return identity(outputs) if node is clones.get(id(layer)) else outputs

    return clone_graph_model(model, layer_fn, action="deepen", advice=_ADVICE, call_function=call)
