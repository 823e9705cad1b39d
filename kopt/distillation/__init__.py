"""Knowledge distillation: train a small student from a large teacher inside ``model.fit``.

:class:`Distiller` combines the hard-label loss with the temperature-softened KL
divergence to the teacher (Hinton et al., 2015), optionally with hint losses on
intermediate layers through learned :class:`FeatureAdapter` projections
(Romero et al., 2015). The student may be pruned or quantization-aware;
``distiller.student`` is the trained model.
"""

from kopt.distillation.distiller import Distiller
from kopt.distillation.feature import FeatureAdapter
from kopt.distillation.feature import feature_extractor
from kopt.distillation.feature import feature_mse
from kopt.distillation.losses import SoftTargetKL
from kopt.distillation.losses import soft_targets
from kopt.distillation.losses import softened_kl_divergence
from kopt.distillation.teacher_cache import teacher_logits
from kopt.distillation.teacher_cache import with_teacher_logits

__all__ = [
    "Distiller",
    "FeatureAdapter",
    "SoftTargetKL",
    "feature_extractor",
    "feature_mse",
    "soft_targets",
    "softened_kl_divergence",
    "teacher_logits",
    "with_teacher_logits",
]

# Last: with this package complete, Keras can load models that use any of kopt's packages.
from kopt import registration as _registration  # noqa: E402

_registration.package_loaded(__name__)
