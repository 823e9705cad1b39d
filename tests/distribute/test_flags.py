"""kopt.distribute.flags: --strategy, --num_gpus and --tpu."""

import pytest
import tensorflow as tf
from absl import flags

from kopt.distribute import define_flags
from kopt.distribute import strategy_from_flags
from kopt.errors import ConfigError


def _parsed(*argv):
    values = flags.FlagValues()
    define_flags(values)
    define_flags(values)  # A second call is harmless.
    values(["prog", *argv])
    return values


def test_defaults_give_the_default_strategy():
    values = _parsed()
    assert (values.strategy, values.num_gpus, values.tpu) == ("default", None, None)
    assert strategy_from_flags(values) is tf.distribute.get_strategy()


def test_unknown_strategy_is_refused_by_the_parser():
    with pytest.raises(flags.IllegalFlagValueError):
        _parsed("--strategy=horovod")


def test_flag_errors_name_the_flag():
    with pytest.raises(ConfigError) as info:
        strategy_from_flags(_parsed("--strategy=one_device", "--num_gpus=2"))
    assert info.value.key == "num_gpus"
    with pytest.raises(ConfigError) as info:
        strategy_from_flags(_parsed("--strategy=tpu"))
    assert info.value.key == "tpu"
