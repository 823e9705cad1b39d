"""Recipe files: a whole ``kopt-optimize`` run in YAML or JSON, checked before any work.

A recipe file holds the keys of :class:`kopt.pipeline.Recipe` (every
``kopt-optimize`` flag has one), with its stages under ``techniques``, in order::

    dataset: npz:mnist.npz          # data
    batch_size: 64
    model: small_cnn                # model
    epochs: 5                       # float training
    learning_rate: 1.0e-3
    optimizer: adamw
    lr_schedule: cosine
    warmup_epochs: 1
    techniques:                     # stages, applied in order
      - name: prune
        params: {target_sparsity: 0.8, epochs: 4, lr_schedule: cosine}
      - name: qat
        params: {epochs: 1, preserve: [sparsity]}

Keys left out take the recipe's defaults. A ``kopt-optimize`` JSON report is a
recipe file too: its ``recipe`` is read, so ``--recipe=report.json`` reruns
that run. An unknown key, a wrong type or an impossible value is a
:class:`kopt.ConfigError` naming the key path (``techniques[0].params.target_sparsity``).
"""

import dataclasses
import os

from kopt.errors import ConfigError
from kopt.pipeline.checks import check_techniques
from kopt.pipeline.document import read_document
from kopt.pipeline.recipe import Recipe
from kopt.pipeline.spec import TechniqueSpec

# Every recipe key and the Python types its value may have (None where optional).
_TYPES = {
    "dataset": (str,),
    "data_dir": (str, type(None)),
    "download": (bool,),
    "num_classes": (int, type(None)),
    "image_size": (list, int, type(None)),
    "audio_samples": (int, type(None)),
    "model": (str,),
    "custom_layers": (list, type(None)),
    "init_from": (str, type(None)),
    "epochs": (int,),
    "batch_size": (int,),
    "learning_rate": (float, int),
    "optimizer": (str,),
    "momentum": (float, int, type(None)),
    "weight_decay": (float, int, type(None)),
    "lr_schedule": (str,),
    "warmup_epochs": (int,),
    "early_stopping_patience": (int, type(None)),
    "mixed_precision": (str,),
    "deterministic": (bool,),
    "batch_norm_batches": (int,),
    "validation_split": (float, int, type(None)),
    "search": (dict, type(None)),
    "seed": (int,),
    "export_dir": (str,),
    "report": (str, type(None)),
    "techniques": (list,),
    "strategy": (str,),
    "num_gpus": (int, type(None)),
    "tpu": (str, type(None)),
}
_EXTENSIONS = (".yaml", ".yml", ".json")


def read_recipe_file(path):
    """Returns the recipe mapping in a YAML or JSON file (a report's ``recipe``).

    The file is read within :mod:`kopt.pipeline.document`'s bounds (size,
    YAML aliases, nesting, duplicate and non-string keys, UTF-8).

    Raises:
        ConfigError: Keyed ``recipe``, for a missing, unreadable or malformed file.
    """
    if not isinstance(path, str) or not path.endswith(_EXTENSIONS):
        raise ConfigError("recipe", path, f"must be a file ending in {', '.join(_EXTENSIONS)}")
    if not os.path.isfile(path):
        raise ConfigError("recipe", path, f"file not found: {os.path.abspath(path)}")
    data = read_document(path, key="recipe")
    if isinstance(data, dict) and "recipe" in data and "baseline" in data:
        data = data["recipe"]  # A kopt-optimize report.
    if not isinstance(data, dict):
        raise ConfigError("recipe", path, f"must hold a mapping of recipe keys, not {type(data).__name__}")
    return data


def recipe_from_dict(data):
    """Builds and fully checks the :class:`Recipe` a recipe mapping describes.

    Checks key names and types, the recipe's values, each stage's params and the
    search block, before any data is loaded.

    Raises:
        ConfigError: Keyed by the path of the first bad key, e.g. ``epochs`` or
            ``techniques[1].params.number_of_clusters``.

    Example:

    >>> recipe = recipe_from_dict({"epochs": 2, "techniques": [
    ...     {"name": "prune", "params": {"target_sparsity": 0.8}}]})
    >>> recipe.epochs, recipe.techniques[0].params
    (2, {'target_sparsity': 0.8})
    >>> recipe_from_dict({"techniques": [{"name": "cluster", "params": {"number_of_clusters": 0}}]})
    Traceback (most recent call last):
    ...
    kopt.errors.ConfigError: techniques[0].params.number_of_clusters=0: must be an integer of at least 2, e.g. 16
    """
    if not isinstance(data, dict):
        raise ConfigError("recipe", data, "must be a mapping of recipe keys")
    for key, value in data.items():
        if key not in _TYPES:
            raise ConfigError(key, value, f"unknown recipe key; known: {', '.join(sorted(_TYPES))}")
        if not isinstance(value, _TYPES[key]) or (isinstance(value, bool) and bool not in _TYPES[key]):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in _TYPES[key])
            raise ConfigError(key, value, f"must be {names}, not {type(value).__name__}")
    settings = dict(data)
    for key in ("learning_rate", "momentum", "weight_decay", "validation_split"):
        if isinstance(settings.get(key), int):
            settings[key] = float(settings[key])
    settings["techniques"] = tuple(_technique(index, item) for index, item in enumerate(data.get("techniques", [])))
    recipe = Recipe(**settings)
    _with_paths(recipe, lambda: _check(recipe))
    return recipe


def _technique(index, item):
    path = f"techniques[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(path, item, "must be a mapping with name and params")
    for key in item:
        if key not in ("name", "params"):
            raise ConfigError(f"{path}.{key}", item[key], "unknown; a stage has name and params")
    name, params = item.get("name"), item.get("params", {})
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}.name", name, "must be a technique name such as prune or qat")
    if not isinstance(params, dict):
        raise ConfigError(f"{path}.params", params, "must be a mapping of the stage's settings")
    return TechniqueSpec(name, dict(params))


def _check(recipe):
    resolved = recipe.validate().resolved().validate()
    check_techniques(resolved)


def _with_paths(recipe, check):
    """Runs ``check``, re-keying stage errors (``prune.x``) to their path in the file."""
    try:
        check()
    except ConfigError as err:
        stage, _, param = err.key.partition(".")
        names = [spec.name for spec in recipe.techniques]
        if err.key == "techniques" and err.value in names:
            raise ConfigError(f"techniques[{names.index(err.value)}].name", err.value, err.reason) from err
        if param and stage in names and stage != "search":
            raise ConfigError(f"techniques[{names.index(stage)}].params.{param}", err.value, err.reason) from err
        raise


def to_yaml(recipe):
    """Returns ``recipe`` as YAML text that :func:`read_recipe_file` reads back.

    Example:

    >>> from kopt.pipeline import Recipe
    >>> from kopt.pipeline.document import parse_document
    >>> data = parse_document(to_yaml(Recipe(epochs=3)), "yaml", key="recipe", name="r.yaml")
    >>> recipe_from_dict(data) == Recipe(epochs=3)
    True
    """
    import yaml

    return yaml.safe_dump(dataclasses.asdict(recipe) | {"techniques": recipe.to_dict()["techniques"]}, sort_keys=False)
