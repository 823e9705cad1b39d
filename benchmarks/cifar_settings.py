"""Settings of the CIFAR-10 suite (``benchmarks/cifar.py``), read by both sides as JSON."""

import dataclasses

from benchmarks.cifar_models import MODELS
from benchmarks.core.settings import SuiteSettings

__all__ = ["KOPT_ONLY", "TECHNIQUES", "CifarSettings"]

# Every row, in report order; tfmot runs the ones it has (not KOPT_ONLY).
TECHNIQUES = (
    "float32",
    "ptq_int8",
    "qat_int8",
    "prune_50",
    "prune_80",
    "prune_90",
    "prune_2of4",
    "float32_continued",
    "structured_30",
    "structured_50",
    "structured_latency",
    "structured_50_scratch",
    "cluster_16",
    "prune_cluster_qat_int8",
    "distill",
)
# tfmot has no structured (channel) pruning and no distillation; float32_continued is the
# structured rows' control: the seed's float model trained as many more epochs, unpruned.
KOPT_ONLY = (
    "float32_continued",
    "structured_30",
    "structured_50",
    "structured_latency",
    "structured_50_scratch",
    "distill",
)


@dataclasses.dataclass(frozen=True)
class CifarSettings(SuiteSettings):
    """What both sides train and how; every stage uses ``cifar_training.train``'s recipe.

    Attributes:
        models: Networks of ``cifar_models.MODELS`` to run.
        techniques: Rows of :data:`TECHNIQUES` to run.
        float_epochs / float_learning_rate: Training from scratch.
        finetune_epochs / finetune_learning_rate: Pruning (50/80/90%, 2:4) and clustering fine-tunes.
        prune_end_fraction: The polynomial schedule reaches its sparsity after this share
            of the fine-tune's steps; the rest trains at it. Masks update every
            ``prune_frequency`` steps.
        qat_epochs / qat_learning_rate: QAT, and the QAT stage of prune-cluster-QAT.
        structured_epochs / structured_learning_rate: Fine-tuning after removing channels.
        structured_speedup: The modelled speedup of the ``structured_latency`` row's
            ``latency_channel_plan`` (each layer timed alone in LiteRT on this machine).
        clusters / cluster_learning_rate: Clusters per weight (k-means++), and the
            clustering stage's rate (its epochs: ``finetune_epochs``).
        pcqat_sparsity: The pruning stage of prune-cluster-QAT.
        distill_teacher / distill_student: Networks of the distillation row (the
            student trains from scratch for ``float_epochs`` on the teacher's logits).
        distill_alpha / distill_temperature: The Distiller's label weight and temperature.
        representative_examples: Training images PTQ calibrates on.
        max_train_examples / max_test_examples: Cut the data (smoke runs); ``None``: all.
        latency_rounds / latency_calls: The interleaved latency pass per seed and model.
    """

    models: tuple = MODELS
    techniques: tuple = TECHNIQUES
    float_epochs: int = 15
    float_learning_rate: float = 2e-3
    finetune_epochs: int = 3
    finetune_learning_rate: float = 5e-4
    prune_end_fraction: float = 0.6
    prune_frequency: int = 50
    qat_epochs: int = 2
    qat_learning_rate: float = 1e-4
    # As long as training from scratch: removing half the channels costs MobileNetV2 8-10 points
    # after 5 epochs, 0.6 after 15 (seed 0, /tmp experiment noted on issue 25).
    structured_epochs: int = 15
    structured_learning_rate: float = 1e-3
    # The structured_speed benchmark's plan for the must-hold's 1.7x, chosen there before this row existed.
    structured_speedup: float = 1.7
    clusters: int = 16
    cluster_learning_rate: float = 1e-4
    pcqat_sparsity: float = 0.5
    distill_teacher: str = "resnet20"
    distill_student: str = "mobilenet_v2"
    distill_alpha: float = 0.1
    distill_temperature: float = 4.0
    representative_examples: int = 256
    max_train_examples: int | None = None
    max_test_examples: int | None = None
    latency_rounds: int = 7
    latency_calls: int = 100

    def __post_init__(self):
        unknown = [name for name in self.models if name not in MODELS]
        if unknown:
            raise ValueError(f"models must be among {MODELS}. Received: models={list(self.models)}")
        unknown = [name for name in self.techniques if name not in TECHNIQUES]
        if unknown:
            raise ValueError(f"techniques must be among {TECHNIQUES}. Received: techniques={list(self.techniques)}")
        self.require_at_least_one(
            "float_epochs", "finetune_epochs", "qat_epochs", "structured_epochs", "clusters", "latency_rounds"
        )
        if not self.structured_speedup > 1:
            raise ValueError(
                f"structured_speedup must be above 1. Received: structured_speedup={self.structured_speedup}"
            )
        if not 0 < self.prune_end_fraction <= 1:
            raise ValueError(f"prune_end_fraction must be in (0, 1]. Received: {self.prune_end_fraction}")

    @classmethod
    def quick(cls, **overrides):
        """A smoke run: ResNet-20 alone (its own student in the distillation row), 640 training and
        500 test images, one epoch per stage, a short latency pass."""
        values = {
            "models": ("resnet20",),
            "distill_student": "resnet20",
            "float_epochs": 1,
            "finetune_epochs": 1,
            "qat_epochs": 1,
            "structured_epochs": 1,
            "max_train_examples": 640,
            "max_test_examples": 500,
            "prune_frequency": 5,
            "latency_rounds": 2,
            "latency_calls": 10,
            **overrides,
        }
        return cls(**values)

    def as_dict(self):
        values = super().as_dict()
        return {**values, "models": list(self.models), "techniques": list(self.techniques)}

    def describe(self):
        return (
            f"Every stage: Adam with a cosine decay to 0, batch 64, random flips and 4-pixel shifts. "
            f"Float: {self.float_epochs} epochs from scratch at {self.float_learning_rate:g}. "
            f"PTQ int8: {self.representative_examples} training images calibrate (kopt: its own calibration; "
            f"tfmot: the TFLite converter's). QAT: {self.qat_epochs} epochs at {self.qat_learning_rate:g}. "
            f"Pruning 50/80/90% and 2:4: {self.finetune_epochs} epochs at {self.finetune_learning_rate:g}, "
            f"polynomial from 0 reached after {self.prune_end_fraction:.0%} of the steps, masks every "
            f"{self.prune_frequency} steps (2:4: constant), stripped, float32 file. Structured 30/50%: "
            f"prune_channels (L1) then {self.structured_epochs} epochs at {self.structured_learning_rate:g}. "
            f"Structured latency: latency_channel_plan (L1, each layer timed alone in LiteRT, channels 8 at a time, "
            f"at most 75% of a group) for a modelled {self.structured_speedup:g}x, then fine-tuned as the structured "
            f"rows. Structured 50% from scratch: the architecture prune_channels leaves at 50%, initialized "
            f"afresh and trained from scratch for the whole budget, {self.float_epochs + self.structured_epochs} "
            f'epochs at {self.float_learning_rate:g} (Liu et al. 2019, "Rethinking the value of network pruning"); '
            f"their control, float32_continued: the float model trained as many more epochs at that rate, unpruned. "
            f"Clustering: {self.clusters} clusters, k-means++, {self.finetune_epochs} epochs at "
            f"{self.cluster_learning_rate:g}. Prune-cluster-QAT: pruning to {self.pcqat_sparsity:.0%}, "
            f"clustering with preserved zeros, then sparsity- and cluster-preserving QAT, each stage as above. "
            f"Distillation: {self.distill_student} from scratch taught by the seed's float {self.distill_teacher} "
            f"(alpha {self.distill_alpha:g}, temperature {self.distill_temperature:g}), {self.float_epochs} epochs."
        )
