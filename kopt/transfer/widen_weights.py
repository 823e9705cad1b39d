"""New weights for the layers a Net2WiderNet widening touches, computed in NumPy.

:func:`kopt.transfer.widen` rebuilds the model with the wider layer, then asks
this module for the weights of every layer whose shape changed: the widened
layer itself (its kernel's output columns and bias copied through ``g``) and
each layer reading its channels (rows copied through the position map of
:func:`kopt.transfer.net2net.match_positions`, and divided by the replication
count where the layer sums over them). The maths is in :mod:`kopt.transfer.net2net`.

Example:

>>> import numpy as np
>>> kernel = np.arange(6.0).reshape(3, 2)
>>> consumer_kernel(kernel, positions=np.array([0, 1, 2, 1]), divisor=np.array([1.0, 2.0, 1.0, 2.0]))
array([[0. , 1. ],
       [1. , 1.5],
       [4. , 5. ],
       [1. , 1.5]])
"""

import keras
import numpy as np

from kopt.pruning.structured_layers import GATES

__all__ = ["consumer_kernel", "reader_weights", "widened_weights"]

# How each kind of reader (kopt.pruning.structured_layers.classify) takes its weights.
READER_KINDS = ("producer", "recurrent", "bidirectional", "depthwise", "normalization")


def consumer_kernel(kernel: np.ndarray, *, positions: np.ndarray, divisor: np.ndarray) -> np.ndarray:
    """A summing layer's kernel (input axis -2) for the widened input: rows copied, divided by the count."""
    rows = np.take(np.asarray(kernel), positions, axis=-2)
    return rows / np.asarray(divisor, rows.dtype)[:, None]


def widened_weights(
    layer, mapping: np.ndarray, *, rng: np.random.Generator, noise_stddev: float, values: list | None = None
) -> list:
    """The widened layer's weights: output unit ``j`` copies unit ``g(j)``.

    Args:
        layer: The original Dense or convolution layer.
        mapping: Net2WiderNet's ``g`` (:func:`kopt.transfer.net2net.replication_map`).
        rng: Draws the noise.
        noise_stddev: Standard deviation of Gaussian noise added to the copied
            units' kernel columns, as a fraction of the kernel's standard
            deviation; 0 adds none.
        values: The arrays to widen, in ``layer.weights`` order, when they are
            not the layer's own (a layer that also reads the widened channels
            passes its :func:`reader_weights`); default the layer's.

    Returns:
        NumPy arrays in ``layer.weights`` order.
    """
    if values is None:
        values = [variable.numpy() for variable in layer.weights]
    if isinstance(layer, keras.layers.Bidirectional):  # both directions copy unit g(j)
        split = len(layer.forward_layer.weights)
        return [
            *_widened_recurrent(layer.forward_layer, values[:split], mapping, rng=rng, noise_stddev=noise_stddev),
            *_widened_recurrent(layer.backward_layer, values[split:], mapping, rng=rng, noise_stddev=noise_stddev),
        ]
    if type(layer).__name__ in GATES:
        return _widened_recurrent(layer, values, mapping, rng=rng, noise_stddev=noise_stddev)
    units = int(np.asarray(layer.kernel).shape[-1])
    found = []
    for variable, value in zip(layer.weights, values, strict=True):
        value = np.array(value)
        if variable.name == "kernel":
            value = np.take(value, mapping, axis=-1)
            if noise_stddev > 0:
                scale = noise_stddev * float(np.std(value[..., :units])) or noise_stddev
                value[..., units:] += rng.normal(0.0, scale, value[..., units:].shape).astype(value.dtype)
        elif variable.name == "bias":
            value = np.take(value, mapping, axis=-1)
        else:
            raise _unknown(layer, variable)
        found.append(value)
    return found


def _widened_recurrent(layer, values, mapping, *, rng, noise_stddev):
    """An LSTM/GRU/SimpleRNN's weights with unit ``j`` copying unit ``g(j)`` in every gate.

    The copies' hidden states feed the recurrent kernel back, so its rows are divided by
    the copy counts as any reader's are: unit ``j``'s state then stays unit ``g(j)``'s.
    """
    units = int(layer.get_config()["units"])
    gates = GATES[type(layer).__name__]
    columns = (np.arange(gates)[:, None] * units + mapping[None, :]).reshape(-1)
    new = (np.arange(gates)[:, None] * len(mapping) + np.arange(units, len(mapping))[None, :]).reshape(-1)
    counts = np.bincount(mapping, minlength=units).astype(np.float64)
    found = []
    for variable, value in zip(layer.weights, values, strict=True):
        value = np.array(value)
        if variable.name == "kernel":
            value = value[:, columns]
            if noise_stddev > 0:
                scale = noise_stddev * float(np.std(np.asarray(values[0]))) or noise_stddev
                value[:, new] += rng.normal(0.0, scale, (value.shape[0], len(new))).astype(value.dtype)
        elif variable.name == "recurrent_kernel":
            value = (value[mapping] / counts[mapping][:, None]).astype(value.dtype)[:, columns]
        elif variable.name == "bias":
            value = value[..., columns]
        else:
            raise _unknown(layer, variable)
        found.append(value)
    return found


def reader_weights(layer, kind: str, *, positions: np.ndarray, divisor: np.ndarray, old_size: int) -> list:
    """The weights of a layer reading the widened channels, for its wider input.

    Args:
        layer: The original reader.
        kind: Its role, one of :data:`READER_KINDS`.
        positions: For each entry of its new input's last axis, the old entry copied.
        divisor: For each new entry, the replication count of the widened
            channel it copies (1 for other channels).
        old_size: The length of the old input's last axis.

    Returns:
        NumPy arrays in ``layer.weights`` order.

    Raises:
        ValueError: For a weight this module does not know how to widen.
    """
    if kind not in READER_KINDS:
        raise ValueError(f"kind must be one of {READER_KINDS}. Received: kind={kind!r} for layer {layer.name!r}")
    config = layer.get_config()
    multiplier = int(config.get("depth_multiplier", 1))
    repeated = (positions[:, None] * multiplier + np.arange(multiplier)).reshape(-1)
    found = []
    for variable in layer.weights:
        value = np.asarray(variable.numpy())
        name = variable.name
        if kind == "normalization" and value.shape == (old_size,):
            value = value[positions]
        elif kind == "normalization" and isinstance(layer, keras.layers.PReLU):
            value = np.take(value, positions, axis=-1)  # slopes per (position and) channel: a copy's is its source's
        elif kind == "normalization" and value.ndim == 0:
            pass
        elif kind == "depthwise" and name == "kernel":
            value = np.take(value, positions, axis=-2)
        elif kind == "depthwise" and name == "bias":
            value = value[repeated]
        elif kind in ("producer", "recurrent", "bidirectional") and name == "kernel":
            value = consumer_kernel(value, positions=positions, divisor=divisor)
        elif kind in ("recurrent", "bidirectional") and name in ("recurrent_kernel", "bias"):
            pass
        elif kind == "producer" and name == "depthwise_kernel":
            value = np.take(value, positions, axis=-2)
        elif kind == "producer" and name == "pointwise_kernel":
            value = consumer_kernel(value, positions=repeated, divisor=np.repeat(divisor, multiplier))
        elif kind == "producer" and name == "bias":
            pass
        else:
            raise _unknown(layer, variable)
        found.append(value)
    return found


def _unknown(layer, variable):
    return ValueError(
        f"Layer {layer.name!r} ({type(layer).__name__}) has weight {variable.path!r} of shape "
        f"{tuple(variable.shape)}, which widen does not know how to resize; widen another layer"
    )
