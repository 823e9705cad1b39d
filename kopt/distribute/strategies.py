"""Builds the ``tf.distribute`` strategy a run asks for, by name.

``default`` is TensorFlow's default strategy (one device, no wrapping);
``one_device`` pins training to the first GPU, or the CPU where there is none;
``mirrored`` replicates over the local GPUs (``num_gpus`` of them, or all; the
CPU if there are none); ``multi_worker`` all-reduces over the processes listed in
the ``TF_CONFIG`` environment variable; ``tpu`` connects to the TPU at ``tpu``.

Every check runs before TensorFlow is asked to create anything, and a failure
names the setting and the value it received.
"""

import json
import os

import tensorflow as tf

from kopt.errors import ConfigError

__all__ = ["STRATEGIES", "WorkerInfo", "make_strategy", "worker_info"]

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


class WorkerInfo:
    """Where this process sits in a multi-worker cluster.

    Attributes:
        num_workers: Workers in the cluster (1 outside multi-worker training).
        index: This worker's index among them.
        is_chief: Whether this worker writes the files of the run: the task of
            type ``chief``, or worker 0 where the cluster has no chief.
    """

    def __init__(self, num_workers: int = 1, index: int = 0, is_chief: bool = True):
        self.num_workers = num_workers
        self.index = index
        self.is_chief = is_chief

    def __repr__(self):
        return f"WorkerInfo(num_workers={self.num_workers}, index={self.index}, is_chief={self.is_chief})"


def worker_info(tf_config: str | None = None) -> WorkerInfo:
    """Parses ``TF_CONFIG`` (or the given JSON text) into a :class:`WorkerInfo`.

    Args:
        tf_config: The JSON text; by default the ``TF_CONFIG`` environment variable.
            An absent or empty value means a single worker.

    Raises:
        ConfigError: For text that is not the JSON TensorFlow expects, naming
            what is missing.

    Example:

    >>> info = worker_info('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}')
    >>> info.num_workers, info.index, info.is_chief
    (2, 1, False)
    """
    text = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not text.strip():
        return WorkerInfo()
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError("TF_CONFIG", text, f"is not valid JSON ({err.msg})") from err
    cluster, task = config.get("cluster") if isinstance(config, dict) else None, config.get("task", {})
    if not isinstance(cluster, dict) or not cluster.get("worker") and not cluster.get("chief"):
        raise ConfigError("TF_CONFIG", text, 'needs "cluster" with a "worker" (and optionally "chief") address list')
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int):
        raise ConfigError(
            "TF_CONFIG", text, f'needs "task": {{"type": one of {sorted(cluster)}, "index": its position in that list}}'
        )
    if not 0 <= task["index"] < len(cluster[task["type"]]):
        raise ConfigError("TF_CONFIG", text, f"task index {task['index']} is outside the {task['type']!r} list")
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    index = task["index"] if task["type"] == "chief" else chiefs + task["index"]
    is_chief = task["type"] == "chief" or (chiefs == 0 and task["type"] == "worker" and task["index"] == 0)
    return WorkerInfo(num_workers=chiefs + workers, index=index, is_chief=is_chief)


def make_strategy(
    name: str = "default", *, num_gpus: int | None = None, tpu: str | None = None
) -> tf.distribute.Strategy:
    """Returns the ``tf.distribute.Strategy`` called ``name``.

    Build and compile models inside ``strategy.scope()``; train with
    ``model.fit`` or, under ``multi_worker``, :func:`kopt.distribute.fit`.

    Args:
        name: One of :data:`STRATEGIES`.
        num_gpus: For ``mirrored``: how many local GPUs to use (default all).
            Asking for more than there are is an error, not a quiet fallback.
        tpu: For ``tpu``: the TPU's name or ``grpc://host:port`` address, or
            ``"local"`` on a TPU VM. Required for ``tpu``, refused otherwise.

    Raises:
        ConfigError: For an unknown name, a bad ``num_gpus`` or ``tpu``, a
            ``multi_worker`` run without a valid ``TF_CONFIG``, or a TPU that
            cannot be reached (with TensorFlow's message).

    Example:

    >>> make_strategy("default").num_replicas_in_sync
    1
    """
    if name not in STRATEGIES:
        raise ConfigError("strategy", name, f"must be one of {', '.join(STRATEGIES)}")
    if num_gpus is not None and (isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 1):
        raise ConfigError("num_gpus", num_gpus, "must be a positive integer")
    if num_gpus is not None and name != "mirrored":
        raise ConfigError("num_gpus", num_gpus, f"applies to --strategy=mirrored only, not {name}")
    if tpu is not None and name != "tpu":
        raise ConfigError("tpu", tpu, f"applies to --strategy=tpu only, not {name}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(_mirrored_devices(num_gpus))
    if name == "multi_worker":
        info = worker_info()
        if info.num_workers == 1 and not os.environ.get("TF_CONFIG", "").strip():
            raise ConfigError(
                "strategy", name, "needs the TF_CONFIG environment variable listing the cluster and this task"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy(tpu)


def _mirrored_devices(num_gpus):
    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    if num_gpus is not None and num_gpus > len(gpus):
        raise ConfigError("num_gpus", num_gpus, f"only {len(gpus)} GPU(s) are visible to TensorFlow")
    if gpus:
        return gpus[: num_gpus or len(gpus)]
    # No GPU: one replica per logical CPU device (one unless configured otherwise).
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def _tpu_strategy(tpu):
    if not tpu:
        raise ConfigError(
            "tpu", tpu, "--strategy=tpu needs the TPU's name, grpc://host:port address, or 'local' on a TPU VM"
        )
    if not isinstance(tpu, str) or any(ch.isspace() for ch in tpu):
        raise ConfigError("tpu", tpu, "must be a TPU name, a grpc://host:port address or 'local'")
    if "://" in tpu and not tpu.startswith("grpc://"):
        raise ConfigError("tpu", tpu, "addresses use the grpc:// scheme, e.g. grpc://10.0.0.2:8470")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        if tpu != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except Exception as err:  # TensorFlow raises many types for an absent TPU.
        raise ConfigError("tpu", tpu, f"could not connect to the TPU ({type(err).__name__}: {err})") from err
