"""``kopt-optimize --tune``: the flags of the hyperparameter search and the ``search`` block they make.

Each flag sets one key of the recipe's ``search`` block
(:mod:`kopt.pipeline.search_spec`); the others are errors without ``--tune``::

    kopt-optimize --prune=0.8 --tune=bayesian --max_trials=10 --size_budget_kib=40
"""

from absl import flags

__all__ = ["SEARCH_FLAG_FOR_KEY", "SEARCH_KEYS", "SEARCH_NEEDS", "search_from_flags"]

flags.DEFINE_enum(
    "tune",
    "none",
    ["none", "random", "bayesian", "hyperband"],
    "Search the recipe's hyperparameters with KerasTuner, on validation accuracy, then train the best.",
)
flags.DEFINE_integer("max_trials", 10, "With --tune: the number of trials.")
flags.DEFINE_string("tune_dir", None, "With --tune: KerasTuner's folder; rerunning resumes from it.")
flags.DEFINE_float("size_budget_kib", None, "With --tune: the gzipped optimized .tflite must fit in this many KiB.")

# flag -> the search key it sets.
_KEY_OF_FLAG = {
    "tune": "tuner",
    "max_trials": "max_trials",
    "tune_dir": "directory",
    "size_budget_kib": "size_budget_kib",
}
SEARCH_KEYS = {flag: (f"search.{key}",) for flag, key in _KEY_OF_FLAG.items()}
SEARCH_FLAG_FOR_KEY = {f"search.{key}": flag for flag, key in _KEY_OF_FLAG.items()}
# Flags that only mean something with --tune.
SEARCH_NEEDS = {flag: ("tune",) for flag in _KEY_OF_FLAG if flag != "tune"}


def search_from_flags(flag_values=flags.FLAGS):
    """The recipe's ``search`` block from the flags, or ``None`` without ``--tune``."""
    if flag_values["tune"].value == "none":
        return None
    return {key: flag_values[flag].value for flag, key in _KEY_OF_FLAG.items()}
