"""Settings of the accuracy-aware compression benchmark (``python -m benchmarks.auto``).

Model and float training are those of the pruning benchmark (tfmot's pruning
example CNN, 4 epochs at batch 32, Adam 1e-3). Every pruned model is fine-tuned
from the same float model for the same epochs and batch size (those of tfmot's
example: 2 epochs at batch 128), sparsity rising along ``PolynomialDecay`` from
0 over the first 70% of fine-tuning, so uniform and allocated rows differ only
in the per-layer sparsities. Decisions (sensitivity, allocation, the auto loop)
read a validation split carved from the training data; the test split only
scores.
"""

import dataclasses

from benchmarks import markdown
from benchmarks.core.settings import SuiteSettings


@dataclasses.dataclass(frozen=True)
class AutoSettings(SuiteSettings):
    """One benchmark configuration."""

    dense_epochs: int = 4
    dense_batch_size: int = 32
    finetune_epochs: int = 2
    finetune_batch_size: int = 128
    learning_rate: float = 0.001
    validation_split: float = 0.1
    calibration_examples: int = 256
    max_train_examples: int | None = None
    sparsities: tuple = (0.8, 0.9)
    sensitivity_levels: tuple = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
    fragile_drop: float | None = None
    structured_fractions: tuple = (0.5, 0.75)
    max_accuracy_drop: float = 0.5
    auto_steps: tuple = (0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95)

    def __post_init__(self):
        self.require_at_least_one("dense_epochs", "dense_batch_size", "finetune_epochs", "finetune_batch_size")

    @classmethod
    def quick(cls):
        """A smoke run: 3000 training examples, 1 epoch everywhere, two auto steps."""
        return cls(
            dense_epochs=1,
            finetune_epochs=1,
            max_train_examples=3000,
            sensitivity_levels=(0.5, 0.8, 0.9),
            structured_fractions=(0.5,),
            auto_steps=(0.5, 0.8),
        )

    def describe(self):
        """Markdown bullet lines stating every setting."""
        from benchmarks.pruning_settings import MODEL_DESCRIPTION

        train = markdown.training_examples(self.max_train_examples)
        levels = ", ".join(f"{level:.0%}" for level in self.sensitivity_levels)
        steps = ", ".join(f"{step:g}" for step in self.auto_steps)
        return [
            f"- Model: {MODEL_DESCRIPTION}.",
            f"- Data: {train}; {self.validation_split:.0%} of them, chosen at random per seed, held out as the "
            "validation split every decision reads; accuracy on the 10,000 MNIST test images.",
            f"- Float training: Adam (learning rate {self.learning_rate:g}), epochs {self.dense_epochs}, "
            f"batch size {self.dense_batch_size}.",
            f"- Every pruned row: fine-tuned from the same float model, fresh Adam ({self.learning_rate:g}), "
            f"epochs {self.finetune_epochs}, batch size {self.finetune_batch_size}, same example order; "
            "per-layer sparsity rises from 0 along PolynomialDecay over the first 70% of the steps, "
            "mask updates every tenth of that ramp; stripped before export.",
            f"- Sensitivity: each layer alone pruned to {levels} (magnitude) and its weights fake-quantized to "
            "8 and 4 bits (weights only), scored on validation without retraining. Allocation: greedy least "
            "predicted loss per weight removed; a layer is fragile past the sparsity at which it alone loses "
            + (
                "half the float model's validation accuracy above chance (10%)"
                if self.fragile_drop is None
                else f"{self.fragile_drop:g} points"
            )
            + " without retraining.",
            "- Uniform: every prunable layer (the Conv2D kernel and the Dense kernel) at the target sparsity. "
            "Random criterion: uniform sparsity, weights chosen by a fixed random draw instead of magnitude.",
            f"- Structured: {', '.join(f'{f:.0%}' for f in self.structured_fractions)} of the Conv2D filters removed "
            "by L1 norm or by first-order Taylor importance (Molchanov et al. 2019, on 16 training batches of 128), "
            "then fine-tuned as above (the Dense output layer cannot lose units).",
            f"- Auto: `kopt.auto.compress(max_accuracy_drop={self.max_accuracy_drop:g})`, steps {steps}, each "
            f"fine-tuned {self.finetune_epochs} epochs as above from the previous kept model.",
            f"- int8: full-integer post-training quantization, float32 input and output, calibrated on the first "
            f"{self.calibration_examples} training images; sizes are the .tflite file gzipped at level 9.",
        ]
