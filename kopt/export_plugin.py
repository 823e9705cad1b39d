"""kopt's plugin for tflite_export: its saved layers and its datasets.

Declared in ``pyproject.toml`` under the entry point group
``tflite_export.plugins`` (see :mod:`tflite_export.plugins`), so that
``tflite_export.load_model`` reads files that hold kopt's wrappers and
``python -m tflite_export --data=digits`` finds kopt's datasets, while
``tflite_export`` itself imports nothing from kopt.
"""

import keras  # noqa: F401  (registration imports kopt's packages once Keras is loaded)

from kopt import registration
from kopt.data import load_dataset as _load_dataset

__all__ = ["load_dataset", "register_layers"]


def register_layers():
    """Registers kopt's saved classes with Keras, and with them kopt's export hooks.

    Example:

    >>> import keras
    >>> register_layers()
    >>> "kopt>PruneLowMagnitude" in keras.saving.get_custom_objects()
    True
    """
    registration.register_when_keras_loads()


def load_dataset(name, *, data_dir=None, image_size=None):
    """``kopt.data.load_dataset(name, data_dir=data_dir, image_size=image_size)``: ``(train, test, info)``."""
    return _load_dataset(name, data_dir=data_dir, image_size=image_size)
