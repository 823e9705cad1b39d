"""Dotted overrides, ``epochs`` or ``prune.target_sparsity``: one meaning for flags, files and searches.

A key is a recipe key (``"epochs"``), ``"search.<key>"`` or
``"<stage>.<param>"``, which sets that param of every stage of that name. Flags
over a recipe file (:mod:`kopt.cli.recipe_flags`) set them in the file's
mapping with :func:`set_override`; a search trial (:mod:`kopt.pipeline.search_spec`)
sets them in a :class:`kopt.pipeline.Recipe` with :func:`override_recipe`.
"""

import dataclasses

from kopt.pipeline.spec import TechniqueSpec

__all__ = ["set_override", "override_recipe"]


def set_override(data, key, value):
    """Sets ``key`` in a recipe mapping to ``value``.

    Args:
        data: A recipe mapping (changed in place).
        key: A recipe key (``"epochs"``), ``"search.<key>"``, or
            ``"<stage>.<param>"``, which sets that param of every stage of that
            name.
        value: The value.

    Returns:
        The key paths set, e.g. ``["techniques[0].params.epochs"]``; empty when
        the recipe has no stage of that name.

    Example:

    >>> data = {"techniques": [{"name": "prune", "params": {}}, {"name": "qat"}]}
    >>> set_override(data, "prune.epochs", 3), set_override(data, "cluster.init", "linear")
    (['techniques[0].params.epochs'], [])
    >>> set_override(data, "search.max_trials", 4), data["search"]
    (['search.max_trials'], {'max_trials': 4})
    """
    head, _, rest = key.partition(".")
    if not rest:
        data[key] = value
        return [key]
    if head == "search":
        if not isinstance(data.get("search"), dict):
            data["search"] = {}
        data["search"][rest] = value
        return [key]
    paths = []
    for index, item in enumerate(data.get("techniques") or []):
        if isinstance(item, dict) and item.get("name") == head:
            item.setdefault("params", {})[rest] = value
            paths.append(f"techniques[{index}].params.{rest}")
    return paths


def override_recipe(recipe, values):
    """Returns ``recipe`` with ``{key: value}`` set as :func:`set_override` sets them.

    Example:

    >>> from kopt.pipeline import Recipe
    >>> recipe = Recipe(techniques=(TechniqueSpec("prune", {"target_sparsity": 0.5}),))
    >>> changed = override_recipe(recipe, {"epochs": 3, "prune.target_sparsity": 0.9})
    >>> changed.epochs, changed.techniques[0].params, recipe.techniques[0].params
    (3, {'target_sparsity': 0.9}, {'target_sparsity': 0.5})
    """
    data = {
        "techniques": [{"name": spec.name, "params": dict(spec.params)} for spec in recipe.techniques],
        "search": dict(recipe.search) if isinstance(recipe.search, dict) else recipe.search,
    }
    for key, value in values.items():
        set_override(data, key, value)
    techniques = tuple(TechniqueSpec(item["name"], item["params"]) for item in data.pop("techniques"))
    return dataclasses.replace(recipe, techniques=techniques, **data)
