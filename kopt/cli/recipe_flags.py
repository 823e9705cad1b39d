"""Flags over a recipe file: which recipe key each ``kopt-optimize`` flag sets.

With ``--recipe=FILE``, only the flags given on the command line change the
file's recipe; the others keep the file's values (or the recipe defaults). A
run or float-training flag sets the recipe key of its name; a technique flag
the ``<stage>.<param>`` keys its technique declares
(:mod:`kopt.cli.technique_flags`); a search flag its ``search.<key>``.
"""

from kopt.cli import technique_flags
from kopt.cli.search_flags import SEARCH_KEYS
from kopt.errors import ConfigError
from kopt.pipeline.overrides import set_override
from kopt.training.flags import FLAG_NAMES as TRAINING_FLAGS

__all__ = ["FLAG_KEYS", "STAGE_OF_FLAG", "apply_flags"]

# Flags that set the recipe key of their own name.
_RECIPE_FLAGS = (
    "dataset", "data_dir", "download", "num_classes", "image_size", "audio_samples",
    "model", "custom_layers", "init_from", "epochs", "batch_size", "learning_rate",
    "seed", "export_dir", "report", "strategy", "num_gpus", "tpu", "validation_split", *TRAINING_FLAGS,
)  # fmt: skip
# flag -> the recipe keys it sets; "<stage>.<param>" sets that param of every
# stage of that name in the file.
FLAG_KEYS = {
    **{flag: (flag,) for flag in _RECIPE_FLAGS},
    **SEARCH_KEYS,
    **{flag: ((flag,) if flag in _RECIPE_FLAGS else ()) + keys for flag, keys in technique_flags.FLAG_KEYS.items()},
}
# Flags that add a stage without a file; over a file, the file must have it.
STAGE_OF_FLAG = technique_flags.STAGE_OF_FLAG


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
