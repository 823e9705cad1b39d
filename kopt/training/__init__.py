"""Training recipes from Keras' own pieces: optimizers, schedules, mixed precision, seeds.

A :class:`TrainingConfig` names an optimizer, a learning-rate schedule (with
warm-up) and early stopping; :func:`training_objects` returns the Keras
optimizer and callbacks for it. :func:`precision_policy` trains under a Keras
mixed-precision policy, :func:`to_float32` gives the float32 model QAT and
TFLite export need, and :func:`make_reproducible` seeds everything and turns on
TensorFlow's op determinism. :func:`reestimate_batch_norm` sets
BatchNormalization's moving statistics from training batches after training.
"""

from kopt.training.batch_norm import reestimate_batch_norm
from kopt.training.config import LR_SCHEDULES
from kopt.training.config import OPTIMIZERS
from kopt.training.config import TrainingConfig
from kopt.training.determinism import make_reproducible
from kopt.training.flags import config_from_flags
from kopt.training.flags import define_flags
from kopt.training.keras_objects import training_objects
from kopt.training.optimizers import get_optimizer
from kopt.training.precision import PRECISIONS
from kopt.training.precision import precision_policy
from kopt.training.precision import to_float32
from kopt.training.schedules import WarmupSchedule
from kopt.training.schedules import learning_rate_schedule
from kopt.training.validation import split_validation

__all__ = [
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "PRECISIONS",
    "TrainingConfig",
    "WarmupSchedule",
    "config_from_flags",
    "define_flags",
    "get_optimizer",
    "learning_rate_schedule",
    "make_reproducible",
    "precision_policy",
    "reestimate_batch_norm",
    "split_validation",
    "to_float32",
    "training_objects",
]

# Last: with this package complete, Keras can load models that use any of kopt's packages.
from kopt import registration as _registration  # noqa: E402

_registration.package_loaded(__name__)
