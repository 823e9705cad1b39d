"""Distributed training for every kopt technique: strategies, a multi-worker ``fit``, backups.

Build and compile the model inside ``make_strategy(name).scope()``. Train with
``model.fit`` under ``default``, ``one_device``, ``mirrored`` and ``tpu``; under
``multi_worker`` (where Keras 3's ``model.fit`` fails) train with
:func:`kopt.distribute.fit`, which takes the same callbacks and works under every
strategy. :class:`BackupAndRestore` makes a killed run resume where it stopped,
and turns SIGTERM into a backup and a prompt stop (:class:`Preempted`).
"""

from kopt.distribute.backup import BackupAndRestore
from kopt.distribute.flags import define_flags
from kopt.distribute.flags import strategy_from_flags
from kopt.distribute.preemption import Preempted
from kopt.distribute.strategies import STRATEGIES
from kopt.distribute.strategies import WorkerInfo
from kopt.distribute.strategies import make_strategy
from kopt.distribute.strategies import worker_info
from kopt.distribute.trainer import fit

__all__ = [
    "STRATEGIES",
    "BackupAndRestore",
    "Preempted",
    "WorkerInfo",
    "define_flags",
    "fit",
    "make_strategy",
    "strategy_from_flags",
    "worker_info",
]

# Last: with this package complete, Keras can load models that use any of kopt's packages.
from kopt import registration as _registration  # noqa: E402

_registration.package_loaded(__name__)
