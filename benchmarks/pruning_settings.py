"""Training settings of the pruning benchmark, shared by the kopt and tfmot sides.

The full settings are those of tfmot's own "Pruning in Keras example"
(``pruning_with_keras.ipynb`` in tensorflow/model-optimization): a 20k-parameter
CNN trained 4 epochs with Adam at Keras' default batch size, then fine-tuned with
pruning for 2 epochs at batch size 128, 10% of the training data held out for
validation, sparsity following ``PolynomialDecay(initial_sparsity=0.5,
final_sparsity=target, begin_step=0, end_step=ceil(train_examples * 0.9 / 128) *
2)`` with its defaults ``power=3, frequency=100``.

This module is plain data: the benchmark passes ``as_dict()`` to the tfmot worker
as JSON, so both sides read the same numbers.
"""

import dataclasses

MODEL_DESCRIPTION = (
    "tfmot example CNN: Reshape(28,28,1) -> Conv2D(12, 3x3, ReLU) -> MaxPool(2x2) "
    "-> Flatten -> Dense(10) logits; 20,410 parameters"
)


@dataclasses.dataclass(frozen=True)
class PruningSettings:
    """One benchmark configuration; field names are the keys the worker reads."""

    dense_epochs: int = 4
    dense_batch_size: int = 32
    prune_epochs: int = 2
    prune_batch_size: int = 128
    validation_split: float = 0.1
    learning_rate: float = 0.001
    initial_sparsity: float = 0.5
    begin_step: int = 0
    power: int = 3
    frequency: int = 100
    # None: pruning ends with fine-tuning, as in the example; k: after k epochs.
    end_step_epochs: int | None = None
    representative_examples: int = 256
    max_train_examples: int | None = None
    sparsities: tuple = (0.5, 0.8, 0.9)

    @classmethod
    def full(cls, sparsities=(0.5, 0.8, 0.9)):
        return cls(sparsities=tuple(sparsities))

    @classmethod
    def quick(cls, sparsities=(0.5, 0.8, 0.9)):
        """A smoke run: fewer examples and epochs, masks updated more often so the
        shorter schedule still reaches its target."""
        return cls(
            dense_epochs=1,
            max_train_examples=4000,
            frequency=10,
            sparsities=tuple(sparsities),
        )

    def as_dict(self):
        values = dataclasses.asdict(self)
        values["sparsities"] = list(self.sparsities)
        return values

    def describe(self):
        """Markdown bullet lines stating every setting."""
        train = "all training examples" if self.max_train_examples is None else (
            f"the first {self.max_train_examples} training examples"
        )
        initial = f"min({self.initial_sparsity:g}, target)"
        end_epochs = self.end_step_epochs or self.prune_epochs
        return [
            f"Model: {MODEL_DESCRIPTION}.",
            (
                f"Data: {train}, the last {self.validation_split:.0%} held out for validation "
                "(Keras `validation_split`), pixels scaled to [0, 1]; accuracy on the whole test set."
            ),
            (
                f"Dense training: Adam (learning rate {self.learning_rate:g}), sparse categorical "
                f"cross-entropy on logits, epochs {self.dense_epochs}, batch size {self.dense_batch_size}."
            ),
            (
                f"Fine-tuning (pruned and plain, each from a copy of the dense weights, fresh Adam): "
                f"epochs {self.prune_epochs}, batch size {self.prune_batch_size}."
            ),
            (
                f"Schedule: PolynomialDecay(initial_sparsity={initial}, final_sparsity=target, "
                f"begin_step={self.begin_step}, end_step=ceil(train_examples x "
                f"{1 - self.validation_split:g} / {self.prune_batch_size}) x {end_epochs}, "
                f"power={self.power}, frequency={self.frequency}); UpdatePruningStep callback; "
                "stripped before export."
            ),
            (
                f"int8: full-integer post-training quantization (float32 input and output), "
                f"calibrated on the first {self.representative_examples} training images."
            ),
            (
                "Sizes: the .tflite file gzipped at level 9 (mtime 0); ratios are to the dense "
                "model's float32 file of the same framework and seed."
            ),
            (
                "Step time: wall time between consecutive training-batch starts, averaged over "
                "every epoch after the first (tracing and warm-up excluded). Pruned and plain "
                "fine-tuning run in the same process on the same data order; plain fine-tuning is "
                "timed before and after the pruned runs and the two pooled."
            ),
        ]
