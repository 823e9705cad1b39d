"""Flags over a recipe file: which recipe key each ``kopt-optimize`` flag sets.

With ``--recipe=FILE``, only the flags given on the command line change the
file's recipe; the others keep the file's values (or the recipe defaults).
"""

from kopt.errors import ConfigError
from kopt.pipeline.recipe_file import set_override

# flag -> the recipe keys it sets; "<stage>.<param>" sets that param of every
# stage of that name in the file.
FLAG_KEYS = {
    "dataset": ("dataset",),
    "data_dir": ("data_dir",),
    "download": ("download",),
    "num_classes": ("num_classes",),
    "model": ("model",),
    "epochs": ("epochs", "distill.epochs"),
    "batch_size": ("batch_size",),
    "learning_rate": ("learning_rate", "distill.learning_rate"),
    "seed": ("seed",),
    "export_dir": ("export_dir",),
    "report": ("report",),
    "strategy": ("strategy",),
    "num_gpus": ("num_gpus",),
    "tpu": ("tpu",),
    "optimizer": ("optimizer",),
    "momentum": ("momentum",),
    "weight_decay": ("weight_decay",),
    "lr_schedule": ("lr_schedule",),
    "warmup_epochs": ("warmup_epochs",),
    "early_stopping_patience": ("early_stopping_patience",),
    "mixed_precision": ("mixed_precision",),
    "deterministic": ("deterministic",),
    "validation_split": ("validation_split",),
    "prune": ("prune.target_sparsity",),
    "prune_schedule": ("prune.schedule",),
    "sparsity_m_by_n": ("prune.sparsity_m_by_n",),
    "prune_structured": ("prune_structured.fraction",),
    "cluster": ("cluster.number_of_clusters",),
    "cluster_init": ("cluster.init",),
    "cluster_per_channel": ("cluster.cluster_per_channel", "qat.cluster_per_channel"),
    "distill": (),
    "teacher": ("distill.teacher",),
    "student": ("distill.student",),
    "temperature": ("distill.temperature",),
    "alpha": ("distill.alpha",),
    "distillation": ("distill.distillation",),
    "qat": (),
    "qat_scheme": ("qat.scheme",),
    "ptq": ("ptq.mode",),
    "ptq_calibration": ("ptq.calibration",),
    "quantized_io": ("qat.io_type", "ptq.io_type"),
    "finetune_epochs": ("prune.epochs", "prune_structured.epochs", "cluster.epochs", "qat.epochs", "auto.epochs"),
    "finetune_learning_rate": (
        "prune.learning_rate",
        "prune_structured.learning_rate",
        "cluster.learning_rate",
        "qat.learning_rate",
        "auto.learning_rate",
    ),
    "tune": ("search.tuner",),
    "max_trials": ("search.max_trials",),
    "tune_dir": ("search.directory",),
    "size_budget_kib": ("search.size_budget_kib",),
    "auto": (),
    "max_accuracy_drop": ("auto.max_accuracy_drop",),
    "target_sparsity": ("auto.target_sparsity",),
    "target_gzip_kb": ("auto.target_gzip_kb",),
    "time_budget": ("auto.time_budget",),
}
# Flags that add a stage without a file; over a file, the file must have it.
STAGE_OF_FLAG = {
    "prune": "prune",
    "sparsity_m_by_n": "prune",
    "prune_structured": "prune_structured",
    "cluster": "cluster",
    "distill": "distill",
    "qat": "qat",
    "ptq": "ptq",
    "auto": "auto",
}


def apply_flags(data, given):
    """Overrides a recipe mapping with the flags given on the command line.

    Args:
        data: The recipe mapping read from the file (changed in place).
        given: ``{flag_name: value}`` of the flags present, values already in
            recipe form (``sparsity_m_by_n`` as ``[M, N]``).

    Returns:
        ``{key_path: flag_name}`` for every key a flag set, so an error about
        that key can name the flag.

    Raises:
        ConfigError: Keyed ``--<flag>`` for a flag that names a stage the file
            lacks, or a stage setting no stage of the file takes.

    Example:

    >>> data = {"techniques": [{"name": "prune", "params": {"target_sparsity": 0.5}}]}
    >>> apply_flags(data, {"prune": 0.9, "epochs": 3})
    {'techniques[0].params.target_sparsity': 'prune', 'epochs': 'epochs'}
    >>> data["techniques"][0]["params"]["target_sparsity"], data["epochs"]
    (0.9, 3)
    """
    stages = {item.get("name") for item in data.get("techniques") or [] if isinstance(item, dict)}
    paths = {}
    for flag, value in given.items():
        stage = STAGE_OF_FLAG.get(flag)
        if stage is not None and (stage in stages) != (value is not False):
            action = "has no" if value is not False else "has a"
            raise ConfigError(
                f"--{flag}", value, f"the recipe file {action} {stage} stage; edit its techniques instead"
            )
        if flag == "tune" and value == "none":
            data["search"] = None
            continue
        touched = []
        for key in FLAG_KEYS[flag]:
            touched += set_override(data, key, value)
        if FLAG_KEYS[flag] and not touched:
            names = sorted({key.partition(".")[0] for key in FLAG_KEYS[flag]})
            raise ConfigError(f"--{flag}", value, f"the recipe file has no {' or '.join(names)} stage it applies to")
        paths.update({path: flag for path in touched})
    return paths
