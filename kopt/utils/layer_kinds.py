"""Layer kinds that pruning, clustering and quantization recognise alike.

:func:`recurrent_directions` finds the recurrent layers inside a layer: itself, or
a ``Bidirectional``'s two directions around an LSTM, GRU or SimpleRNN, whose
kernels the techniques treat as that layer's.

Normalization layers and PReLU hold one scale, offset, statistic or slope per
channel: a few hundred numbers on a whole MobileNet, each of which matters.
Pruning or clustering them would change every activation of a channel for no
saving worth having, so kopt leaves them as they are, as tfmot's registries do,
and does not warn about them.

Example:

>>> import keras
>>> is_left_alone_by_design(keras.layers.BatchNormalization()), is_left_alone_by_design(keras.layers.Dense(2))
(True, False)
"""

import keras

__all__ = ["LEFT_ALONE_BY_DESIGN", "RECURRENT", "is_left_alone_by_design", "recurrent_directions"]

LEFT_ALONE_BY_DESIGN = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.Normalization,
    keras.layers.PReLU,
)


def is_left_alone_by_design(layer) -> bool:
    """Whether ``layer`` is one of :data:`LEFT_ALONE_BY_DESIGN` (subclasses included)."""
    return isinstance(layer, LEFT_ALONE_BY_DESIGN)


RECURRENT = (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)


def recurrent_directions(layer) -> list:
    """The recurrent layers that run inside ``layer``: ``[layer]`` for an LSTM, GRU or SimpleRNN,
    ``[forward, backward]`` for a ``Bidirectional`` around one, ``[]`` for anything else.

    >>> len(recurrent_directions(keras.layers.Bidirectional(keras.layers.GRU(2))))
    2
    """
    if isinstance(layer, RECURRENT):
        return [layer]
    if isinstance(layer, keras.layers.Bidirectional) and isinstance(layer.forward_layer, RECURRENT):
        return [layer.forward_layer, layer.backward_layer]
    return []
