"""kopt.distribute.strategies: strategies by name, TF_CONFIG parsing, clear errors."""

import json

import pytest
import tensorflow as tf

from kopt.distribute import make_strategy
from kopt.distribute import worker_info
from kopt.errors import ConfigError


def test_default_is_tensorflows_default_strategy():
    assert make_strategy() is tf.distribute.get_strategy()


def test_one_device_uses_the_cpu_without_a_gpu():
    strategy = make_strategy("one_device")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.num_replicas_in_sync == 1
    if not tf.config.list_logical_devices("GPU"):
        assert "CPU" in strategy.extended.worker_devices[0].upper()


def test_mirrored_without_a_gpu_mirrors_over_the_cpu_devices():
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    strategy = make_strategy("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == len(tf.config.list_logical_devices("CPU"))


@pytest.mark.parametrize(
    "kwargs, key, message",
    [
        ({"name": "horovod"}, "strategy", "must be one of default, one_device, mirrored, multi_worker, tpu"),
        ({"name": "mirrored", "num_gpus": 0}, "num_gpus", "positive integer"),
        ({"name": "mirrored", "num_gpus": True}, "num_gpus", "positive integer"),
        ({"name": "mirrored", "num_gpus": 64}, "num_gpus", r"GPU\(s\) are visible"),
        ({"name": "default", "num_gpus": 1}, "num_gpus", "mirrored only"),
        ({"name": "mirrored", "tpu": "grpc://1.2.3.4:8470"}, "tpu", "tpu only"),
        ({"name": "tpu"}, "tpu", "needs the TPU's name"),
        ({"name": "tpu", "tpu": "http://1.2.3.4:8470"}, "tpu", "grpc:// scheme"),
        ({"name": "tpu", "tpu": "my tpu"}, "tpu", "must be a TPU name"),
    ],
)
def test_bad_settings_name_the_setting_and_value(kwargs, key, message):
    with pytest.raises(ConfigError, match=message) as info:
        make_strategy(**kwargs)
    assert info.value.key == key


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs the TF_CONFIG environment variable"):
        make_strategy("multi_worker")


def test_multi_worker_rejects_a_malformed_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG=.*is not valid JSON"):
        make_strategy("multi_worker")


def test_worker_info_without_tf_config_is_a_single_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    info = worker_info()
    assert (info.num_workers, info.index, info.is_chief) == (1, 0, True)


@pytest.mark.parametrize(
    "cluster, task, expected",
    [
        ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 0}, (2, 0, True)),
        ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1}, (2, 1, False)),
        ({"chief": ["c:0"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, (2, 0, True)),
        ({"chief": ["c:0"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, (2, 1, False)),
    ],
)
def test_worker_info_reads_cluster_and_task(cluster, task, expected):
    info = worker_info(json.dumps({"cluster": cluster, "task": task}))
    assert (info.num_workers, info.index, info.is_chief) == expected


@pytest.mark.parametrize(
    "config, message",
    [
        ({"task": {"type": "worker", "index": 0}}, 'needs "cluster"'),
        ({"cluster": {"worker": ["a:1"]}}, 'needs "task"'),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}, 'needs "task"'),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}, "outside the 'worker' list"),
    ],
)
def test_worker_info_names_what_is_missing(config, message):
    with pytest.raises(ConfigError, match=message):
        worker_info(json.dumps(config))
