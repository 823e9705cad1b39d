"""Every stage of a recipe checked against the recipe, before any work."""

from kopt.pipeline import stages  # noqa: F401  (registers the built-in techniques)
from kopt.pipeline.stage_order import check_stage_order
from kopt.pipeline.techniques import get_technique

__all__ = ["check_techniques"]


def check_techniques(recipe):
    """Returns ``[(Technique, params), ...]`` after checking every stage against ``recipe``.

    Raises:
        ConfigError: For an unknown technique or bad params, naming
            ``<technique>.<key>``.
    """
    techniques = [(get_technique(spec.name), spec.params) for spec in recipe.techniques]
    for technique, params in techniques:
        technique.check(params)
        technique.check_recipe(recipe, params)
    # The same order and conflict rules whether the stages came from flags or a file.
    check_stage_order(recipe.techniques, techniques)
    return techniques
