"""Every public callable of kopt's technique packages and of tflite_export is fully type-hinted.

What is checked, for each name in a package's ``__all__`` (tflite_export's through
``getattr``, which loads it; a submodule listed there, such as
``kopt.pruning.schedules``, is walked through its own ``__all__``):

* a function: every parameter is annotated, and so is its return;
* a class: its ``__init__`` (parameters only) and its public methods (parameters and
  return), ``__call__`` counted as public, including static and class methods, for
  every class in its MRO that one of ``PACKAGES`` defines (methods inherited from
  Keras are Keras's business); a property's getter must declare its return.

``self``/``cls`` need no annotation, nor do ``*args`` and ``**kwargs``: those forward
to Keras base classes or to a user's function, whose own parameters are not kopt's
to type, so an annotation there would say nothing (they may be annotated).
Constants in ``__all__`` (``MODES``, ``AUTO_PARAMS``...) are not callables and are
skipped. Finally ``typing.get_type_hints`` must resolve on each callable, so that
string annotations (``from __future__ import annotations``, ``TYPE_CHECKING``
imports) name real things.
"""

import ast
import functools
import importlib
import inspect
import sys
import typing

import pytest

PACKAGES = [
    "kopt.auto",
    "kopt.clustering",
    "kopt.data",
    "kopt.distillation",
    "kopt.distribute",
    "kopt.models",
    "kopt.pruning",
    "kopt.quantization",
    "kopt.testing",
    "kopt.training",
    "kopt.transfer",
    "tflite_export",
]
OURS = ("kopt", "tflite_export")
# Base classes count when one of these packages defines them; kopt.utils.substitution
# is in scope for the methods the three wrappers inherit from its SubstitutingWrapper.
IN_SCOPE = (*PACKAGES, "kopt.utils.substitution")
PUBLIC_DUNDERS = ("__init__", "__call__")


def _ours(obj):
    return (getattr(obj, "__module__", None) or "").split(".")[0] in OURS


def _in_scope(cls):
    return any(cls.__module__ == p or cls.__module__.startswith(p + ".") for p in IN_SCOPE)


def _methods(cls):
    """(qualified name, function, is_method) for the public methods kopt defines on ``cls``."""
    for klass in cls.__mro__:
        if not _in_scope(klass):
            continue
        for name, attr in vars(klass).items():
            if name.startswith("_") and name not in PUBLIC_DUNDERS:
                continue
            qualname = f"{klass.__module__}.{klass.__qualname__}.{name}"
            if isinstance(attr, staticmethod):
                yield qualname, attr.__func__, False
            elif isinstance(attr, classmethod):
                yield qualname, attr.__func__, True
            elif isinstance(attr, property):
                if attr.fget is not None:
                    yield qualname, attr.fget, True
            elif inspect.isfunction(attr) and _ours(attr):  # not typing.Protocol's placeholder __init__
                yield qualname, attr, True


def public_callables(package):
    """(qualified name, function, is_method) for every public callable ``package`` exports."""
    module = importlib.import_module(package)
    seen = set()
    found = []

    def add(qualname, func, is_method):
        if id(func) not in seen:
            seen.add(id(func))
            found.append((qualname, func, is_method))

    def walk(mod):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.ismodule(obj):
                if obj.__name__.split(".")[0] in OURS and hasattr(obj, "__all__"):
                    walk(obj)
            elif inspect.isclass(obj) and _ours(obj):
                for item in _methods(obj):
                    add(*item)
            elif inspect.isfunction(obj) and _ours(obj):
                add(f"{obj.__module__}.{obj.__qualname__}", obj, False)

    walk(module)
    return found


def missing_annotations(func, is_method):
    """What ``func`` leaves unannotated: parameter names, and "return" for the return."""
    missing = []
    params = list(inspect.signature(func).parameters.values())
    if is_method and params:
        params = params[1:]  # self or cls
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.annotation is inspect.Parameter.empty:
            missing.append(param.name)
    if func.__name__ != "__init__" and "return" not in func.__annotations__:
        missing.append("return")
    return missing


@pytest.mark.parametrize("package", PACKAGES)
def test_public_callables_are_fully_annotated(package):
    callables = public_callables(package)
    assert callables, f"{package}: found no public callables; is the walk broken?"
    problems = [
        f"{name}: {missing}" for name, func, is_method in callables if (missing := missing_annotations(func, is_method))
    ]
    assert not problems, f"{package}: unannotated parameters or returns:\n" + "\n".join(problems)


@functools.cache
def type_checking_names(module_name):
    """The names a module imports under ``if TYPE_CHECKING:``, imported for real.

    Modules that keep TensorFlow out of their import time name ``tf.data.Dataset``
    in string annotations only; ``get_type_hints`` resolves those with these names
    added, as a type checker would.
    """
    tree = ast.parse(inspect.getsource(sys.modules[module_name]))
    names = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            exec(compile(ast.Module(body=node.body, type_ignores=[]), module_name, "exec"), names)
    names.pop("__builtins__", None)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_type_hints_resolve(package):
    problems = []
    for name, func, _ in public_callables(package):
        try:
            typing.get_type_hints(func, localns=type_checking_names(func.__module__))
        except Exception as err:  # NameError for an unknown name, TypeError for a bad expression
            problems.append(f"{name}: {type(err).__name__}: {err}")
    assert not problems, f"{package}: annotations that do not resolve:\n" + "\n".join(problems)


def test_the_check_sees_a_missing_hint():
    def typed(a: int, *args, b: str = "", **kwargs) -> None: ...

    def untyped_param(a, b: int) -> None: ...

    def untyped_return(a: int): ...

    class Example:
        def __init__(self, a: int) -> None: ...

        def method(self, a): ...

    assert missing_annotations(typed, False) == []
    assert missing_annotations(untyped_param, False) == ["a"]
    assert missing_annotations(untyped_return, False) == ["return"]
    assert missing_annotations(Example.__init__, True) == []
    assert missing_annotations(Example.method, True) == ["a", "return"]
