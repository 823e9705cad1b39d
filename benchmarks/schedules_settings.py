"""Settings of the schedules benchmark: what a practitioner would run on a 22k-image MNIST."""

import dataclasses

from benchmarks import markdown
from benchmarks.core.settings import SuiteSettings


@dataclasses.dataclass(frozen=True)
class SchedulesSettings(SuiteSettings):
    """One configuration: float training, then 80% pruning fine-tuned under each schedule."""

    model: str = "small_cnn"
    float_epochs: int = 2
    finetune_epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-3
    sparsity: float = 0.8
    schedules: tuple = ("constant", "cosine", "plateau")
    validation_split: float = 0.1
    max_train_examples: int | None = None

    @classmethod
    def quick(cls):
        """A smoke run: 2000 training examples, one epoch each."""
        return cls(float_epochs=1, finetune_epochs=1, max_train_examples=2000)

    def describe(self):
        """Markdown bullet lines stating every setting."""
        train = markdown.training_examples(self.max_train_examples)
        return [
            f"- Data: {train}, the last {self.validation_split:.0%} of them (after the seed's shuffle) held out "
            "for validation; accuracy on the 10,000 MNIST test images.",
            f"- Float model: kopt's `{self.model}`, Adam at {self.learning_rate:g}, {self.float_epochs} epochs, "
            f"batch {self.batch_size}.",
            f"- Fine-tune: kopt's `prune` stage, {self.sparsity:.0%} sparsity on every kernel (polynomial ramp over "
            f"the first 70% of steps), Adam at a peak of {self.finetune_learning_rate:g}, {self.finetune_epochs} "
            "epochs, from the same float weights and in the same example order for every schedule.",
            "- Schedules (kopt's `lr_schedule`): `constant`; `cosine` (Keras CosineDecay to 0 over the "
            "fine-tune); `plateau` (Keras ReduceLROnPlateau on the validation loss: x0.2 after 1 epoch "
            "without improvement).",
        ]
