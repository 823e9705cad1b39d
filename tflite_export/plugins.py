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

A user's own layers need no plugin: :func:`import_user_modules` imports the
module (or ``.py`` file) that registers them with
``@keras.saving.register_keras_serializable``, which the command lines do for
``--custom_layers``.
"""

import importlib.metadata
import importlib.util
import os
import re
import sys

__all__ = [
    "GROUP",
    "add_plugin",
    "dataset_loader",
    "import_user_modules",
    "loaded_plugins",
    "register_layers",
    "unknown_class_hint",
]

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


def import_user_modules(entries):
    """Imports each module name (``my_pkg.layers``) or ``.py`` file path in ``entries``.

    Importing runs the module's ``@keras.saving.register_keras_serializable``
    decorators, so models holding its layers load. A module name is looked for on
    ``sys.path`` and then in the current directory.

    Args:
        entries: Module names and ``.py`` paths.

    Returns:
        The imported modules' names, in order.

    Raises:
        ValueError: Naming the entry, for a missing file or module or an error
            raised while importing it.

    Example:

    >>> import_user_modules(["json"])
    ['json']
    """
    imported = []
    for entry in entries:
        try:
            imported.append(_import_one(entry))
        except ValueError:
            raise
        except Exception as err:  # whatever the user's module raises while it runs
            detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            raise ValueError(f"importing {entry!r} failed ({type(err).__name__}: {detail})") from err
    return imported


def _import_one(entry):
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"a module name or .py file path is needed. Received: {entry!r}")
    if entry.endswith(".py"):
        path = os.path.abspath(entry)
        if not os.path.isfile(path):
            raise ValueError(f"file not found: {path}")
        name = os.path.splitext(os.path.basename(path))[0]
        if sys.modules.get(name) is not None and getattr(sys.modules[name], "__file__", None) == path:
            return name
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # the layers' saved configs name this module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return name
    if importlib.util.find_spec(entry.split(".")[0]) is None and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # a console script's path does not hold the current directory
    try:
        importlib.import_module(entry)
    except ModuleNotFoundError as err:
        raise ValueError(f"no module {entry!r} on the Python path or in {os.getcwd()} ({err})") from err
    return entry


def unknown_class_hint(error):
    """For a model that failed to load over an unregistered class, how to load it; else ``None``.

    Example:

    >>> unknown_class_hint(Exception("Could not locate class 'Scale'. ... {'module': 'mylayers', 'class_name': 'Scale'"))
    "layer class 'Scale' (saved from module 'mylayers') is not registered in this process; import it with --custom_layers=mylayers (or --custom_layers=FILE.py)"
    """
    text = str(error)
    found = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
    if found is None:
        return None
    name = found.group(1)
    module = re.search(r"'module': '([\w.]+)', 'class_name': '" + re.escape(name) + "'", text)
    where = f" (saved from module {module.group(1)!r})" if module and not module.group(1).startswith("keras") else ""
    target = module.group(1) if where else "MODULE"
    return (
        f"layer class {name!r}{where} is not registered in this process; import it with --custom_layers={target} "
        "(or --custom_layers=FILE.py)"
    )
