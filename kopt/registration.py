"""kopt's saved layers load with ``keras.models.load_model`` after a plain ``import kopt``.

Keras finds a custom class of a ``.keras`` file only once the module that
registers it has run. ``import kopt`` stays cheap (no TensorFlow), so it cannot
import those modules itself; instead it arranges for them to be imported as
soon as Keras is: at once if Keras already is, else right after Keras's own
import finishes (a one-shot import hook). Either way they cost a fraction of a
second once TensorFlow is loaded.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__all__ = ["SERIALIZABLE_PACKAGES", "package_loaded", "register_when_keras_loads"]

# Subpackages whose classes appear in saved models: wrappers, schedules, callbacks, models.
SERIALIZABLE_PACKAGES = (
    "kopt.quantization",
    "kopt.pruning",
    "kopt.clustering",
    "kopt.distillation",
    "kopt.training",
    "kopt.distribute",
)


def register_when_keras_loads():
    """Imports :data:`SERIALIZABLE_PACKAGES` now if Keras is loaded, else once it is.

    Example:

    >>> import keras
    >>> register_when_keras_loads()
    >>> "kopt>QuantizeWrapper" in keras.saving.get_custom_objects()
    True
    """
    if "keras" in sys.modules:
        _import_all()
    elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras())


def package_loaded(name):
    """Called last in each of :data:`SERIALIZABLE_PACKAGES`: registers the others too.

    ``import kopt.quantization`` is what loads Keras in many scripts; the hook
    then leaves the other packages to this call, made once the package that
    loaded Keras is complete.
    """
    if "keras" in sys.modules:
        _import_all(finishing=name)


def _initializing(name):
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and getattr(spec, "_initializing", False)


def _import_all(finishing=None):
    # A kopt module whose own import is what loads Keras finishes first;
    # importing the others in the middle of it would meet it half-built.
    # Its package calls package_loaded at its end, which comes back here.
    busy = [name for name in list(sys.modules) if name.startswith("kopt.") and _initializing(name)]
    if any(name != finishing and not (finishing or "").startswith(name + ".") for name in busy):
        return
    for name in SERIALIZABLE_PACKAGES:
        try:
            importlib.import_module(name)
        except Exception as err:  # Never break the user's `import keras`; say what failed.
            warnings.warn(
                f"kopt could not register the layers of {name} with Keras ({type(err).__name__}: {err}); "
                f"import {name} yourself before loading a model that uses them.",
                stacklevel=2,
            )


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of ``keras`` so kopt registers once it has run."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # one shot, and out of the way of the real lookup
        spec = importlib.util.find_spec("keras")
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenRegister(spec.loader)
        return spec


class _ThenRegister(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _import_all()

    def __getattr__(self, name):  # resource readers and the like come from the real loader
        return getattr(self._loader, name)
