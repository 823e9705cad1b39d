"""Which weights of a layer are clustered: the ClusterableLayer protocol and built-ins.

A layer is clusterable if it has a ``get_clusterable_weights()`` method returning
``[(name, variable), ...]`` (tfmot's :class:`ClusterableLayer` protocol, checked
by structure: subclassing it is optional), or if it is one of these Keras layers:

* Dense, EinsumDense, Conv1D/2D/3D, Conv1D/2D/3DTranspose, DepthwiseConv1D/2D:
  ``kernel``;
* SeparableConv1D/2D: ``depthwise_kernel`` and ``pointwise_kernel``;
* Embedding: ``embeddings``;
* MultiHeadAttention: the kernels of its query, key, value and output
  projections (``query_kernel``, ``key_kernel``, ``value_kernel``,
  ``output_kernel``), each with centroids of its own;
* LSTM, GRU, SimpleRNN: the cell's ``kernel`` and ``recurrent_kernel`` (every
  gate's columns; with ``cluster_per_channel``, each gate's unit has its own);
  inside ``Bidirectional``, those of both directions (``forward_kernel``,
  ``forward_recurrent_kernel``, ``backward_kernel``, ``backward_recurrent_kernel``);
* ``TimeDistributed``: the weights of the layer it applies at every step.

Biases are never clustered: they are few, and each one shifts a whole channel.

Example:

>>> import keras
>>> layer = keras.layers.Dense(3)
>>> layer.build((None, 4))
>>> [name for name, _ in get_clusterable_weights(layer)]
['kernel']
"""

import abc
import typing

import keras

from kopt.utils import layer_kinds

__all__ = ["ClusterableLayer", "get_clusterable_weights", "is_clusterable"]


@typing.runtime_checkable
class ClusterableLayer(typing.Protocol):
    """A layer that says which of its weights to cluster.

    Any layer with a ``get_clusterable_weights()`` method qualifies; subclassing
    this class as a mix-in (tfmot style) also makes a missing method an error at
    construction. The method is called after the layer is built.

    Example:

    >>> import keras
    >>> class MyDense(keras.layers.Dense, ClusterableLayer):
    ...     def get_clusterable_weights(self):
    ...         return [("kernel", self.kernel)]
    >>> isinstance(MyDense(2), ClusterableLayer)
    True
    """

    @abc.abstractmethod
    def get_clusterable_weights(self) -> list:
        """Returns ``[(name, variable), ...]``: the weights to cluster."""


L = keras.layers
_KERNEL_LAYERS = (
    L.Dense, L.EinsumDense, L.Conv1D, L.Conv2D, L.Conv3D, L.Conv1DTranspose, L.Conv2DTranspose,
    L.Conv3DTranspose, L.DepthwiseConv1D, L.DepthwiseConv2D,
)  # fmt: skip


def _built_in_getter(layer):
    if isinstance(layer, L.TimeDistributed):
        return _built_in_getter(layer.layer)  # the same variables, applied at every step
    if isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):
        return lambda: [("depthwise_kernel", layer.depthwise_kernel), ("pointwise_kernel", layer.pointwise_kernel)]
    if isinstance(layer, _KERNEL_LAYERS):
        return lambda: [("kernel", layer.kernel)]
    if isinstance(layer, L.Embedding):
        return lambda: [("embeddings", layer.embeddings)]
    if isinstance(layer, L.MultiHeadAttention):
        return lambda: [
            (f"{part}_kernel", getattr(layer, f"{part}_dense").kernel) for part in ("query", "key", "value", "output")
        ]
    directions = layer_kinds.recurrent_directions(layer)
    if len(directions) == 1 or isinstance(layer, (L.ConvLSTM1D, L.ConvLSTM2D, L.ConvLSTM3D)):
        return lambda: [("kernel", layer.cell.kernel), ("recurrent_kernel", layer.cell.recurrent_kernel)]
    if directions:  # a Bidirectional's two
        return lambda: [
            (f"{prefix}_{name}", getattr(direction.cell, name))
            for prefix, direction in zip(("forward", "backward"), directions, strict=True)
            for name in ("kernel", "recurrent_kernel")
        ]
    return None


def _implements_protocol(layer):
    return callable(getattr(type(layer), "get_clusterable_weights", None))


def is_clusterable(layer) -> bool:
    """Whether ``layer`` follows the protocol or is a supported built-in layer.

    Example:

    >>> import keras
    >>> is_clusterable(keras.layers.Dense(2)), is_clusterable(keras.layers.Flatten())
    (True, False)
    """
    return _implements_protocol(layer) or _built_in_getter(layer) is not None


def get_clusterable_weights(layer) -> list:
    """Returns ``[(name, variable), ...]`` of a built ``layer`` that clustering shares.

    Raises:
        ValueError: If the layer is not clusterable (naming it, its class and the
            protocol), or gives something other than its own float variables.
    """
    if _implements_protocol(layer):
        pairs = list(layer.get_clusterable_weights())
    else:
        getter = _built_in_getter(layer)
        if getter is None:
            raise ValueError(unsupported_message(layer))
        pairs = getter()
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[1], keras.Variable)):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}): get_clusterable_weights() must return "
                f"(name, keras.Variable) pairs. Received: {pair!r}"
            )
        if "float" not in str(pair[1].dtype):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) gave a non-float clusterable weight. "
                f"Received: {pair[1].path} with dtype={pair[1].dtype}"
            )
    return [(str(name), variable) for name, variable in pairs]


def unsupported_message(layer):
    """The error text for a layer that cannot be clustered."""
    return (
        f"Layer {layer.name!r} of class {type(layer).__name__} is not supported by kopt.clustering. "
        "Supported: Dense, EinsumDense, Conv*, Conv*Transpose, DepthwiseConv*, SeparableConv*, Embedding, "
        "MultiHeadAttention, LSTM, GRU, SimpleRNN (also in Bidirectional), and any of them in TimeDistributed. "
        "To cluster another layer, give it a `get_clusterable_weights()` method returning "
        "[(name, variable), ...] (the kopt.clustering.ClusterableLayer protocol)."
    )
