"""kopt.pruning: magnitude pruning for Keras 3, with tfmot's API.

Port from ``tfmot.sparsity.keras`` by changing the import::

    from kopt import pruning  # was: tfmot.sparsity.keras

    model = pruning.prune_low_magnitude(
        model, pruning_schedule=pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000))
    model.compile(...)
    model.fit(x, y, callbacks=[pruning.UpdatePruningStep()])
    model = pruning.strip_pruning(model)

Structured pruning really shrinks a trained model (``prune_channels`` removes whole
filters/units and the inputs that read them), and ``sparsity_report`` /
``check_m_by_n`` measure what a Keras model or a ``.tflite`` file actually holds.
"""

from kopt.pruning import schedules
from kopt.pruning.api import prune_low_magnitude
from kopt.pruning.api import prune_scope
from kopt.pruning.callbacks import PruningStep
from kopt.pruning.callbacks import PruningSummaries
from kopt.pruning.callbacks import UpdatePruningStep
from kopt.pruning.flops import count_flops
from kopt.pruning.flops import layer_flops
from kopt.pruning.latency_plan import latency_channel_plan
from kopt.pruning.policy import PruneForLatencyOnXNNPack
from kopt.pruning.policy import PruningPolicy
from kopt.pruning.prunable import PrunableLayer
from kopt.pruning.report import check_m_by_n
from kopt.pruning.report import empty_channels
from kopt.pruning.report import format_sparsity_report
from kopt.pruning.report import kernel_sparsity
from kopt.pruning.report import sparsity_report
from kopt.pruning.schedules import ConstantSparsity
from kopt.pruning.schedules import PolynomialDecay
from kopt.pruning.schedules import PruningSchedule
from kopt.pruning.strip import strip_pruning
from kopt.pruning.structured import apply_channel_plan
from kopt.pruning.structured import channel_plan
from kopt.pruning.structured import prune_channels
from kopt.pruning.structured import structured_pruning_report
from kopt.pruning.structured_layers import register_channelwise_layer
from kopt.pruning.taylor import taylor_importance
from kopt.pruning.wrapper import PruneLowMagnitude

__all__ = [
    "ConstantSparsity",
    "PolynomialDecay",
    "PrunableLayer",
    "PruneForLatencyOnXNNPack",
    "PruneLowMagnitude",
    "PruningPolicy",
    "PruningSchedule",
    "PruningStep",
    "PruningSummaries",
    "UpdatePruningStep",
    "apply_channel_plan",
    "channel_plan",
    "check_m_by_n",
    "count_flops",
    "empty_channels",
    "format_sparsity_report",
    "kernel_sparsity",
    "latency_channel_plan",
    "layer_flops",
    "prune_channels",
    "prune_low_magnitude",
    "prune_scope",
    "register_channelwise_layer",
    "schedules",
    "sparsity_report",
    "strip_pruning",
    "structured_pruning_report",
    "taylor_importance",
]

# Last: with this package complete, Keras can load models that use any of kopt's packages.
from kopt import registration as _registration  # noqa: E402

_registration.package_loaded(__name__)
