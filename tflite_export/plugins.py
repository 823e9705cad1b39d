"""Libraries that extend tflite_export, found through the entry point group ``tflite_export.plugins``.

tflite_export imports no other library itself. A library whose layers appear in
saved models, or that provides labelled data by name, declares a plugin in its
package metadata (kopt does, in ``pyproject.toml``)::

    [project.entry-points."tflite_export.plugins"]
    kopt = "kopt.export_plugin"

The entry point names a module (or any object) with these optional attributes:

* ``register_layers()``: makes the library's saved layer classes known to Keras
  (and registers its :mod:`tflite_export.export_hooks`), so ``load_model`` reads
  files saved mid-optimization.
* ``load_dataset(name, *, data_dir=None, image_size=None)``: returns ``(train, test,
  info)`` for a dataset name, as ``kopt.data.load_dataset`` does, for ``python -m
  tflite_export --data=NAME``; ``info`` has ``name`` and ``input_shape``. It raises
  ``ValueError`` for a name it cannot load. ``image_size`` (``(height, width)``) is
  passed only with ``--image_size``, so a loader without that argument still works.

:func:`add_plugin` adds one in-process (tests, notebooks).
"""

import importlib.metadata

__all__ = ["GROUP", "add_plugin", "dataset_loader", "loaded_plugins", "register_layers"]

GROUP = "tflite_export.plugins"
_ADDED = []
_LOADED = None


def add_plugin(plugin):
    """Adds ``plugin`` (an object with the attributes above) for this process."""
    if not (hasattr(plugin, "register_layers") or hasattr(plugin, "load_dataset")):
        raise TypeError(f"A plugin needs register_layers, load_dataset or both. Received: {plugin!r}")
    if plugin not in _ADDED:
        _ADDED.append(plugin)


def loaded_plugins():
    """The installed plugins (loaded once per process), then those added with :func:`add_plugin`."""
    global _LOADED
    if _LOADED is None:
        _LOADED = [entry.load() for entry in sorted(importlib.metadata.entry_points(group=GROUP), key=_name)]
    return [*_LOADED, *_ADDED]


def register_layers():
    """Calls every plugin's ``register_layers``."""
    for plugin in loaded_plugins():
        register = getattr(plugin, "register_layers", None)
        if register is not None:
            register()


def dataset_loader():
    """The first plugin's ``load_dataset``, or None when no plugin provides data."""
    for plugin in loaded_plugins():
        loader = getattr(plugin, "load_dataset", None)
        if loader is not None:
            return loader
    return None


def _name(entry):
    return entry.name
