"""The pipeline behind kopt-optimize: a recipe (or recipe file), registered technique stages, a driver."""

from kopt.pipeline.context import StageContext
from kopt.pipeline.driver import run
from kopt.pipeline.recipe import Recipe
from kopt.pipeline.recipe import TechniqueSpec
from kopt.pipeline.recipe_file import read_recipe_file
from kopt.pipeline.recipe_file import recipe_from_dict
from kopt.pipeline.report import format_table
from kopt.pipeline.report import format_trials
from kopt.pipeline.report import write_report
from kopt.pipeline.techniques import Technique
from kopt.pipeline.techniques import get_technique
from kopt.pipeline.techniques import register_technique
from kopt.pipeline.techniques import registered_techniques
from kopt.pruning.report import kernel_sparsity

__all__ = [
    "Recipe",
    "StageContext",
    "Technique",
    "TechniqueSpec",
    "format_table",
    "format_trials",
    "get_technique",
    "kernel_sparsity",
    "read_recipe_file",
    "recipe_from_dict",
    "register_technique",
    "registered_techniques",
    "run",
    "write_report",
]
