"""Which weights of a layer are pruned: the PrunableLayer protocol and built-ins.

A layer is prunable if it has a ``get_prunable_weights()`` method returning a list
of its weight variables (the :class:`PrunableLayer` protocol, checked by
structure: subclassing it is optional), or if it is one of the Keras layers in the
short table below. The table reads public attributes only, so it does not break
when Keras reorganizes its internals.

Built-in choices:

* Dense, EinsumDense, Conv1D/2D/3D, Conv1D/2D/3DTranspose: ``kernel``.
* DepthwiseConv1D/2D: the depthwise ``kernel``, but only when asked for
  (:func:`is_dense_by_default`): wrapped on its own, or named in
  ``prune_low_magnitude(model, layer_schedules=...)``. Pruning a whole model or a
  list leaves them dense, as tfmot does. A 3x3 depthwise kernel has 9 weights
  per channel and holds a few percent of a MobileNet's weights, yet pruning it
  costs most of the accuracy at high sparsity: MobileNetV2-0.35 on CIFAR-10
  pruned to 80% kept 20.4% accuracy with its depthwise kernels pruned and 28.0%
  without (float 40.1%), and XNNPACK's sparse kernels do not use their zeros.
* SeparableConv1D/2D: the ``pointwise_kernel`` only, as in tfmot. The 1x1
  pointwise convolution holds almost all weights and compute; the small
  depthwise kernel is sensitive to pruning and XNNPACK's sparse kernels do not
  use its sparsity.
* Embedding: ``embeddings``.
* MultiHeadAttention: the kernels of its query, key, value and output EinsumDense
  projections.
* LSTM, GRU, SimpleRNN: the cell's ``kernel`` and ``recurrent_kernel``; inside
  ``Bidirectional``, those of both directions.
* ``TimeDistributed``: the weights of the layer it applies at every step.

Biases are never pruned: they are few and each one matters.

Example:

>>> import keras
>>> layer = keras.layers.Dense(3)
>>> layer.build((None, 4))
>>> [w.name for w in get_prunable_weights(layer)]
['kernel']
"""

import abc
import typing

import keras

from kopt.utils import layer_kinds

__all__ = ["PrunableLayer", "get_prunable_weights", "has_nothing_to_prune", "is_dense_by_default", "is_prunable"]


@typing.runtime_checkable
class PrunableLayer(typing.Protocol):
    """A layer that says which of its weights to prune.

    Any layer with a ``get_prunable_weights()`` method qualifies; subclassing this
    class as a mix-in (tfmot style) also makes a missing method an error at
    construction. The method is called after the layer is built.

    Example:

    >>> import keras
    >>> class ScaledDense(keras.layers.Dense, PrunableLayer):
    ...     def get_prunable_weights(self):
    ...         return [self.kernel]
    >>> isinstance(ScaledDense(2), PrunableLayer)
    True
    """

    @abc.abstractmethod
    def get_prunable_weights(self) -> list:
        """Returns the list of weight variables to prune."""


def _kernel(layer):
    return [layer.kernel]


def _rnn_kernels(layer):
    return [layer.cell.kernel, layer.cell.recurrent_kernel]


def _attention_kernels(layer):
    return [layer.query_dense.kernel, layer.key_dense.kernel, layer.value_dense.kernel, layer.output_dense.kernel]


_BUILT_IN = (
    (
        (
            keras.layers.Dense,
            keras.layers.EinsumDense,
            keras.layers.Conv1D,
            keras.layers.Conv2D,
            keras.layers.Conv3D,
            keras.layers.Conv1DTranspose,
            keras.layers.Conv2DTranspose,
            keras.layers.Conv3DTranspose,
            keras.layers.DepthwiseConv1D,
            keras.layers.DepthwiseConv2D,
        ),
        _kernel,
    ),
    ((keras.layers.SeparableConv1D, keras.layers.SeparableConv2D), lambda layer: [layer.pointwise_kernel]),
    ((keras.layers.Embedding,), lambda layer: [layer.embeddings]),
    ((keras.layers.MultiHeadAttention,), _attention_kernels),
    (layer_kinds.RECURRENT, _rnn_kernels),
    # A ConvLSTM's cell holds an input and a recurrent convolution kernel, four gates each.
    ((keras.layers.ConvLSTM1D, keras.layers.ConvLSTM2D, keras.layers.ConvLSTM3D), _rnn_kernels),
)


def has_nothing_to_prune(layer) -> bool:
    """Whether ``layer``'s weights are of a kind pruning leaves alone by design (normalization, PReLU).

    >>> import keras
    >>> has_nothing_to_prune(keras.layers.BatchNormalization()), has_nothing_to_prune(keras.layers.Dense(2))
    (True, False)
    """
    return layer_kinds.is_left_alone_by_design(layer) and not _implements_protocol(layer)


# Prunable layers that whole-model pruning leaves dense unless they are named
# (see the module docstring for the measurement behind it).
_DENSE_BY_DEFAULT = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


def is_dense_by_default(layer) -> bool:
    """Whether pruning a whole model or a list leaves ``layer`` dense unless it is named.

    True for the built-in depthwise convolutions; a layer with its own
    ``get_prunable_weights()`` is pruned like any other.

    >>> import keras
    >>> is_dense_by_default(keras.layers.DepthwiseConv2D(3)), is_dense_by_default(keras.layers.Conv2D(2, 3))
    (True, False)
    """
    return isinstance(layer, _DENSE_BY_DEFAULT) and not _implements_protocol(layer)


def is_prunable(layer) -> bool:
    """Whether ``layer`` follows the protocol or is a supported built-in layer.

    Decided from the layer's class, so it works before the layer is built.

    Args:
        layer: A ``keras.layers.Layer``.

    Returns:
        True if :func:`get_prunable_weights` can be called once it is built.
    """
    return _implements_protocol(layer) or _built_in_getter(layer) is not None


def get_prunable_weights(layer) -> list:
    """Returns the weight variables of a built ``layer`` that pruning masks.

    Args:
        layer: A built ``keras.layers.Layer``.

    Returns:
        A list of ``keras.Variable`` objects.

    Raises:
        ValueError: If the layer is not prunable (the message names the layer, its
            class, and the protocol to implement), or returns something other than
            its own float variables.
    """
    if _implements_protocol(layer):
        weights = list(layer.get_prunable_weights())
    else:
        getter = _built_in_getter(layer)
        if getter is None:
            raise ValueError(unsupported_message(layer))
        weights = getter(layer)
    for weight in weights:
        if not isinstance(weight, keras.Variable):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) gave a prunable weight that is not a "
                f"keras.Variable (LoRA or quantization may be enabled on it). Received: {weight!r}"
            )
        if "float" not in str(weight.dtype):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) gave a non-float prunable weight. "
                f"Received: {weight.path} with dtype={weight.dtype}"
            )
    return weights


def unsupported_message(layer):
    """The error text for a layer that cannot be pruned."""
    return (
        f"Layer {layer.name!r} of class {type(layer).__name__} is not supported by kopt.pruning. "
        "Supported: Dense, EinsumDense, Conv*, Conv*Transpose, DepthwiseConv*, SeparableConv*, "
        "Embedding, MultiHeadAttention, LSTM, GRU, SimpleRNN (also in Bidirectional), and any of them in "
        "TimeDistributed. To prune another "
        "layer, give it a "
        "`get_prunable_weights()` method returning the weights to prune (the "
        "kopt.pruning.PrunableLayer protocol)."
    )


def _implements_protocol(layer):
    return callable(getattr(type(layer), "get_prunable_weights", None))


def _bidirectional_kernels(layer):
    return [kernel for direction in layer_kinds.recurrent_directions(layer) for kernel in _rnn_kernels(direction)]


def _built_in_getter(layer):
    if isinstance(layer, keras.layers.TimeDistributed):
        inner = _built_in_getter(layer.layer)  # the same variables, applied at every step
        return (lambda wrapper: inner(wrapper.layer)) if inner is not None else None
    if isinstance(layer, keras.layers.Bidirectional):
        return _bidirectional_kernels if layer_kinds.recurrent_directions(layer) else None
    for classes, getter in _BUILT_IN:
        if isinstance(layer, classes):
            return getter
    return None
