"""Layer kinds that weight compression leaves alone by design, shared by pruning and clustering.

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

__all__ = ["LEFT_ALONE_BY_DESIGN", "is_left_alone_by_design"]

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
