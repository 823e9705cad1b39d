"""absl flags that choose the strategy: ``--strategy``, ``--num_gpus``, ``--tpu``.

``kopt-optimize`` and the examples define them with :func:`define_flags` and
build the strategy with :func:`strategy_from_flags`.
"""

from typing import TYPE_CHECKING

from absl import flags

from kopt.distribute.strategies import STRATEGIES
from kopt.distribute.strategies import make_strategy

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["define_flags", "strategy_from_flags"]


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines ``--strategy``, ``--num_gpus`` and ``--tpu`` on ``flag_values``.

    Calling it again on the same ``flag_values`` does nothing, so several modules
    of one binary may ask for the flags.

    Example:

    >>> from absl import flags
    >>> values = flags.FlagValues()
    >>> define_flags(values)
    >>> _ = values(["prog", "--strategy=mirrored"])
    >>> values.strategy
    'mirrored'
    """
    if "strategy" in flag_values:
        return
    flags.DEFINE_enum(
        "strategy",
        "default",
        list(STRATEGIES),
        "tf.distribute strategy: default (one device), one_device, mirrored (local GPUs), "
        "multi_worker (processes listed in TF_CONFIG) or tpu (needs --tpu).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "num_gpus", None, "With --strategy=mirrored: how many local GPUs to use (default all).", flag_values=flag_values
    )
    flags.DEFINE_string(
        "tpu",
        None,
        "With --strategy=tpu: TPU name, grpc://host:port address, or 'local' on a TPU VM.",
        flag_values=flag_values,
    )


def strategy_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> "tf.distribute.Strategy":
    """Returns :func:`kopt.distribute.make_strategy` of the parsed flags.

    Raises:
        ConfigError: As :func:`kopt.distribute.make_strategy`, naming the flag.
    """
    return make_strategy(flag_values.strategy, num_gpus=flag_values.num_gpus, tpu=flag_values.tpu)
