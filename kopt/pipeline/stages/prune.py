"""The ``prune`` stage: magnitude pruning (also block and M:N) with fine-tuning.

Params (recipe keys under ``prune``; flags ``--prune``, ``--prune_schedule``,
``--sparsity_m_by_n``, ``--prune_policy``, ``--sparse_weights``, ``--finetune_epochs``,
``--finetune_learning_rate``):

* ``target_sparsity``: fraction of each kernel to zero, in (0, 1). With
  ``sparsity_m_by_n`` it may be omitted: an M:N pattern fixes it at M/N.
* ``schedule``: ``"polynomial"`` (default; Zhu & Gupta's gradual schedule, from 0 to
  the target over the first 70% of fine-tuning so the last 30% recovers accuracy at
  the final sparsity) or ``"constant"`` (the target from the first step).
* ``sparsity_m_by_n``: ``[M, N]``, e.g. ``[2, 4]``: M zeros in every N consecutive
  weights along the input-channel axis (tfmot's meaning).
* ``policy``: ``"all"`` (default: every prunable layer) or ``"xnnpack_sparse"``
  (:class:`kopt.pruning.PruneForLatencyOnXNNPack`: only 1x1 convolutions, of a
  model XNNPACK's sparse kernels can run, checked before pruning).
* ``sparse_weights``: store the pruned weights in TFLite's sparse format; the
  report adds ``tflite_export.sparse_inference_check`` of the file.
* ``epochs``, ``learning_rate`` and the other training keys of
  :mod:`kopt.pipeline.stages.fine_tune`: fine-tuning; the rate defaults to the
  float one. Early stopping counts only from the end of the sparsity ramp, so
  training never stops short of the target.
"""

import dataclasses
import math
from typing import ClassVar

from kopt import pruning
from kopt.errors import ConfigError
from kopt.pipeline.classifier_training import train_classifier
from kopt.pipeline.settings import UNLESS_NONE
from kopt.pipeline.settings import WHEN_GIVEN
from kopt.pipeline.settings import setting
from kopt.pipeline.stages.fine_tune import FineTuneSettings
from kopt.pipeline.stages.fine_tune import FineTuningTechnique
from kopt.pipeline.stages.fine_tune import steps_per_epoch
from kopt.pipeline.techniques import register_technique

SCHEDULES = ("polynomial", "constant")
# "all": every prunable layer; "xnnpack_sparse": kopt.pruning.PruneForLatencyOnXNNPack.
POLICIES = ("all", "xnnpack_sparse")
# The share of fine-tuning over which sparsity ramps up; the rest recovers accuracy.
_RAMP_FRACTION = 0.7
# Mask updates per ramp: often enough to be gradual, rare enough to cost nothing.
_UPDATES_PER_RAMP = 10


def parse_m_by_n(text):
    """``"2,4"`` -> ``[2, 4]``; ``None`` stays ``None`` (the ``--sparsity_m_by_n`` text).

    Example:

    >>> parse_m_by_n("2,4")
    [2, 4]
    """
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ConfigError("sparsity_m_by_n", text, "must be two integers M,N such as 2,4")
    return [int(part) for part in parts]


@dataclasses.dataclass(frozen=True)
class PruneSettings(FineTuneSettings):
    """The ``prune`` params (see the module docstring)."""

    flag_group: ClassVar[str] = "Pruning"

    target_sparsity: float | None = setting(
        None, kind=float, nullable=True, low=0, high=1, open_bounds=True, example=0.8,
        flag="prune", adds_stage=True, help="Magnitude-prune every prunable layer to this sparsity, e.g. 0.8.",
        search={"min": 0.5, "max": 0.95}, search_needs_budget=True,
    )  # fmt: skip
    schedule: str = setting(
        "polynomial", kind=str, choices=SCHEDULES, flag="prune_schedule",
        help="How sparsity reaches --prune during fine-tuning.",
    )  # fmt: skip
    sparsity_m_by_n: list | None = setting(
        None, kind=list, checked=False, flag="sparsity_m_by_n", adds_stage=True, parse=parse_m_by_n,
        from_flags=UNLESS_NONE,
        help="M,N: M zeros in every N consecutive weights, as tfmot (e.g. 2,4); implies sparsity M/N.",
    )  # fmt: skip
    policy: str = setting(
        "all", kind=str, choices=POLICIES, flag="prune_policy", from_flags=WHEN_GIVEN,
        help="Which layers to prune: all, or xnnpack_sparse (only the 1x1 convolutions of a model XNNPACK's "
        "sparse kernels can run; the model is checked first).",
    )  # fmt: skip
    sparse_weights: bool = setting(
        False, kind=bool, flag="sparse_weights", from_flags=WHEN_GIVEN,
        help="Store the pruned weights in TFLite's sparse format (smaller file); the report says whether "
        "XNNPACK's sparse kernels can take it.",
    )  # fmt: skip


@register_technique
class Prune(FineTuningTechnique):
    """Wraps prunable layers, fine-tunes under a schedule, strips to a plain model."""

    name = "prune"
    settings = PruneSettings

    def check(self, params):
        super().check(params)
        m_by_n = params.get("sparsity_m_by_n")
        if m_by_n is not None:
            if (
                not isinstance(m_by_n, (list, tuple))
                or len(m_by_n) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in m_by_n)
                or not 0 < m_by_n[0] < m_by_n[1]
            ):
                raise ConfigError("prune.sparsity_m_by_n", m_by_n, "must be two integers M,N with 0 < M < N, e.g. 2,4")
        target = params.get("target_sparsity")
        if target is None and m_by_n is None:
            raise ConfigError("prune.target_sparsity", target, "give a sparsity in (0, 1) or an M:N pattern")
        if target is not None and m_by_n is not None and abs(target - m_by_n[0] / m_by_n[1]) > 1e-9:
            raise ConfigError(
                "prune.target_sparsity",
                target,
                f"a {m_by_n[0]}:{m_by_n[1]} pattern fixes sparsity at {m_by_n[0] / m_by_n[1]:g}; "
                "leave the sparsity out or make them agree",
            )

    def apply(self, model, context, params):
        config = self.training_config(context.recipe, params)
        epochs = config.epochs
        values = self.values(params)
        m_by_n = values.sparsity_m_by_n
        target = values.target_sparsity
        if target is None:
            target = m_by_n[0] / m_by_n[1]
        total_steps = steps_per_epoch(context) * epochs
        schedule = self._schedule(values.schedule, target, total_steps)
        policy = pruning.PruneForLatencyOnXNNPack() if values.policy == "xnnpack_sparse" else None
        try:
            pruned = pruning.prune_low_magnitude(
                model,
                pruning_schedule=schedule,
                sparsity_m_by_n=tuple(m_by_n) if m_by_n is not None else None,
                pruning_policy=policy,
            )
        except ConfigError as err:
            if err.key != "to_prune":
                raise
            # A --model file saved with its pruning wrappers still on.
            raise ConfigError("model", context.recipe.model, err.reason) from err
        except ValueError as err:  # e.g. an M:N pattern that a kernel's shape cannot take
            if policy is not None and "PruneForLatencyOnXNNPack" in str(err):
                raise ConfigError("prune.policy", values.policy, str(err)) from err
            key, value = ("prune.sparsity_m_by_n", m_by_n) if m_by_n is not None else ("prune.target_sparsity", target)
            raise ConfigError(key, value, str(err)) from err
        train_classifier(
            pruned,
            context.train,
            config=config,
            validation=context.validation,
            callbacks=[pruning.UpdatePruningStep()],
            early_stopping_from_epoch=math.ceil(epochs * _RAMP_FRACTION),
            steps_per_epoch=steps_per_epoch(context),
        )
        return pruned

    def file_options(self, params):
        return {"sparse_weights": True} if self.values(params).sparse_weights else {}

    def strip(self, model):
        return pruning.strip_pruning(model)

    @staticmethod
    def _schedule(kind, target, total_steps):
        end_step = max(1, int(total_steps * _RAMP_FRACTION))
        frequency = max(1, min(100, end_step // _UPDATES_PER_RAMP))
        if kind == "constant":
            return pruning.ConstantSparsity(target, begin_step=0, frequency=frequency)
        return pruning.PolynomialDecay(
            initial_sparsity=0.0, final_sparsity=target, begin_step=0, end_step=end_step, frequency=frequency
        )
