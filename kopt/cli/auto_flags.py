"""``kopt-optimize --auto``: the flags of accuracy-aware compression and the stage they make.

``--auto`` appends the ``auto`` technique (:mod:`kopt.pipeline.stages.auto`) after
any distillation; it chooses pruning and int8 quantization itself, so it refuses
the flags that would choose them by hand. Its own flags are errors without it::

    kopt-optimize --auto --max_accuracy_drop=0.5
    kopt-optimize --auto --max_accuracy_drop=1 --target_gzip_kb=8 --time_budget=900
"""

from absl import flags

AUTO = flags.DEFINE_bool(
    "auto", False, "Accuracy-aware compression: the smallest pruned int8 model within --max_accuracy_drop."
)
MAX_ACCURACY_DROP = flags.DEFINE_float(
    "max_accuracy_drop", 0.5, "With --auto: validation accuracy points the int8 model may lose against float."
)
TARGET_SPARSITY = flags.DEFINE_float(
    "target_sparsity", None, "With --auto: stop once the kept model reaches this overall sparsity."
)
TARGET_GZIP_KB = flags.DEFINE_float(
    "target_gzip_kb", None, "With --auto: stop once the gzipped int8 file fits in this many KiB."
)
TIME_BUDGET = flags.DEFINE_float("time_budget", None, "With --auto: seconds the search may take, over resumptions.")

# Flags that only mean something with --auto, and the auto param each sets.
PARAM_FOR_FLAG = {
    "max_accuracy_drop": "max_accuracy_drop",
    "target_sparsity": "target_sparsity",
    "target_gzip_kb": "target_gzip_kb",
    "time_budget": "time_budget",
}
# Flags that choose by hand what --auto chooses itself.
CONFLICTS = ("prune", "sparsity_m_by_n", "prune_structured", "cluster", "qat", "ptq")
# Recipe keys of auto errors, and the flag that set them.
FLAG_FOR_KEY = {
    "auto": "auto",
    **{f"auto.{param}": flag for flag, param in PARAM_FOR_FLAG.items()},
    "auto.epochs": "finetune_epochs",
    "auto.learning_rate": "finetune_learning_rate",
}


def auto_params(flag_values=flags.FLAGS):
    """The ``auto`` technique's params from the flags, or ``None`` without ``--auto``.

    Raises:
        kopt.ConfigError: An auto flag without ``--auto``, or ``--auto`` with a
            flag that prunes, clusters or quantizes by hand.
    """
    from kopt.errors import ConfigError

    if not flag_values["auto"].value:
        for flag in PARAM_FOR_FLAG:
            if flag_values[flag].present:
                raise ConfigError(flag, flag_values[flag].value, "only means something with --auto")
        return None
    for flag in CONFLICTS:
        value = flag_values[flag].value
        if value not in (None, False):
            raise ConfigError(flag, value, "conflicts with --auto, which chooses pruning and int8 quantization itself")
    params = {param: flag_values[flag].value for flag, param in PARAM_FOR_FLAG.items()}
    # The stage's own default (2 epochs per step) unless fine-tuning is set by hand.
    if flag_values["finetune_epochs"].present:
        params["epochs"] = flag_values["finetune_epochs"].value
    if flag_values["finetune_learning_rate"].value is not None:
        params["learning_rate"] = flag_values["finetune_learning_rate"].value
    return params
