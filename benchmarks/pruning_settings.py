"""Training settings of the pruning benchmark, shared by the kopt and tfmot sides.

The model, data split, dense training and number of fine-tuning epochs are those
of tfmot's own "Pruning in Keras example" (``pruning_with_keras.ipynb`` in
tensorflow/model-optimization): a 20k-parameter CNN trained 4 epochs with Adam at
Keras' default batch size, then fine-tuned with pruning for 2 epochs, 10% of the
training data held out for validation, sparsity following ``PolynomialDecay(
initial_sparsity=0.5, final_sparsity=target, power=3)``.

Three settings are a practitioner's rather than the example's, chosen on the
validation split (seeds 0 and 1) and the same on both sides:

* the first layer (the 108-weight Conv2D) stays dense, as tfmot's comprehensive
  pruning guide advises ("prune the later layers instead of the first"), and the
  Dense layer is pruned a little further so that the target fraction of all the
  model's kernel weights is zero (``pruned_layer_sparsity``);
* the ramp ends after the first fine-tuning epoch (the example ends it at the
  last step, so the model never trains at its final sparsity), masks update every
  20 steps instead of 100;
* fine-tuning runs at batch 16 instead of 128.

At 90%, seed 0 lost 3.17 validation points with the first layer dense and the
example's ramp and batch, 0.84 with the ramp ending after one epoch at batch 32,
0.66 with mask updates every 20 steps as well, and 0.40 at batch 16; seed 1 lost
5.11, 0.18, -0.04 and 0.13. (Ending the ramp after half an epoch lost 0.84 and
0.09 at batch 16.) With every layer pruned as in the example the benchmark's
drops were 1.29 (80%) and 7.93 (90%) test points for kopt, 1.40 and 10.37 for tfmot.

This module is plain data: the benchmark passes ``as_dict()`` to the tfmot worker
as JSON, so both sides read the same numbers.
"""

import dataclasses

from benchmarks import markdown

MODEL_DESCRIPTION = (
    "tfmot example CNN: Reshape(28,28,1) -> Conv2D(12, 3x3, ReLU) -> MaxPool(2x2) "
    "-> Flatten -> Dense(10) logits; 20,410 parameters"
)
# Kernel weights of that model's two prunable layers.
FIRST_LAYER_KERNEL = 3 * 3 * 1 * 12
LAST_LAYER_KERNEL = 13 * 13 * 12 * 10


@dataclasses.dataclass(frozen=True)
class PruningSettings:
    """One benchmark configuration; field names are the keys the worker reads."""

    dense_epochs: int = 4
    dense_batch_size: int = 32
    prune_epochs: int = 2
    prune_batch_size: int = 16
    validation_split: float = 0.1
    learning_rate: float = 0.001
    initial_sparsity: float = 0.5
    begin_step: int = 0
    power: int = 3
    frequency: int = 20
    # None: pruning ends with fine-tuning, as in the example; k: after k epochs.
    end_step_epochs: int | None = 1
    # True: the first Conv2D stays dense and the Dense layer takes all the zeros.
    keep_first_layer_dense: bool = True
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
        return cls(dense_epochs=1, max_train_examples=4000, frequency=10, sparsities=tuple(sparsities))

    def pruned_layer_sparsity(self, target):
        """The Dense layer's sparsity that makes ``target`` of all kernel weights zero."""
        if not self.keep_first_layer_dense:
            return target
        return target * (FIRST_LAYER_KERNEL + LAST_LAYER_KERNEL) / LAST_LAYER_KERNEL

    def as_dict(self):
        values = dataclasses.asdict(self)
        values["sparsities"] = list(self.sparsities)
        values["pruned_layer_sparsity"] = {f"{t:g}": self.pruned_layer_sparsity(t) for t in self.sparsities}
        return values

    def describe(self):
        """Markdown bullet lines stating every setting."""
        train = markdown.training_examples(self.max_train_examples)
        target = "the Dense layer's target" if self.keep_first_layer_dense else "target"
        initial = f"min({self.initial_sparsity:g}, {target})"
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
                "Layers: the first Conv2D (108 weights) left dense; the Dense layer pruned to "
                "target x 20,388 / 20,280 so that the target fraction of all kernel weights is zero."
                if self.keep_first_layer_dense
                else "Layers: every Conv2D and Dense kernel pruned to the target."
            ),
            (
                f"Schedule: PolynomialDecay(initial_sparsity={initial}, final_sparsity={target}, "
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
