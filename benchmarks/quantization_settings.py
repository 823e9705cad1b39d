"""Settings of the quantization benchmark, shared by the kopt and tfmot sides.

The model is a CNN with BatchNormalization (``quantization_models.py``; the
tfmot example CNN of the pruning benchmark on request), trained as the pruning
benchmark trains its model: 4 epochs of Adam at learning rate 1e-3, batch size
32, the last 10% of the training data held out for validation. Quantization-aware
training then fine-tunes a copy of the trained float model, as is usual for QAT,
at a tenth of the learning rate: 2 epochs, batch size 128, Adam at 1e-4. A plain
(unquantized) fine-tune of another copy with the same settings is the step-time
reference.

Exports, per framework and seed: the float model as float32 TFLite; the float
model as full-integer post-training quantized (PTQ) int8 TFLite, calibrated on
the first 256 training images (a reference row, no retraining); the QAT model as
int8 TFLite, its ranges taken from the model (no representative data). All
files are scored, sized and timed by the same code in the parent process
(``tflite_export.predict``, ``file_sizes`` and ``benchmark``): LiteRT
interpreter, XNNPACK on, 1 thread, batch 1.

This module is plain data: the benchmark passes ``as_dict()`` to the tfmot worker
as JSON, so both sides read the same numbers.
"""

import dataclasses

from benchmarks import markdown
from benchmarks import quantization_models
from benchmarks.core.settings import SuiteSettings


@dataclasses.dataclass(frozen=True)
class QuantizationSettings(SuiteSettings):
    """One benchmark configuration; field names are the keys the worker reads.

    The ``dense_*``, ``learning_rate``, ``validation_split``,
    ``representative_examples`` and ``max_train_examples`` keys mean what they
    mean in ``PruningSettings``, so both benchmarks train the float model with
    the same code.
    """

    model: str = quantization_models.DEFAULT_MODEL
    dense_epochs: int = 4
    dense_batch_size: int = 32
    learning_rate: float = 0.001
    validation_split: float = 0.1
    qat_epochs: int = 2
    qat_batch_size: int = 128
    qat_learning_rate: float = 0.0001
    representative_examples: int = 256
    max_train_examples: int | None = None
    # One invoke() of these models takes 0.02 to 0.2 ms with XNNPACK: many runs
    # are cheap (about 25 s per seed for all files) and needed for a stable median.
    latency_runs: int = 1000
    latency_warmup: int = 50
    # Every file is timed this many times, the files taking turns, and the median
    # of the rounds' medians kept: a burst of other work on the machine then
    # lands on one round of every file rather than on all rounds of one.
    latency_rounds: int = 5

    def __post_init__(self):
        if self.model not in quantization_models.MODELS:
            raise ValueError(
                f"model must be one of {', '.join(quantization_models.MODELS)}. Received: model={self.model!r}"
            )
        if self.qat_epochs < 2:
            # The first epoch is never timed (tracing, warm-up).
            raise ValueError(f"qat_epochs must be at least 2 to time any step. Received: qat_epochs={self.qat_epochs}")
        self.require_at_least_one(
            "dense_epochs", "dense_batch_size", "qat_batch_size", "latency_runs", "latency_rounds"
        )

    @classmethod
    def full(cls, model=quantization_models.DEFAULT_MODEL):
        return cls(model=model)

    @classmethod
    def quick(cls, model=quantization_models.DEFAULT_MODEL):
        """A smoke run: 4000 training examples, 1 dense epoch, fewer latency runs."""
        return cls(model=model, dense_epochs=1, max_train_examples=4000, latency_runs=500, latency_rounds=2)

    def describe(self):
        """Markdown bullet lines stating every setting."""
        train = markdown.training_examples(self.max_train_examples)
        return [
            f"Model: {quantization_models.DESCRIPTIONS[self.model]}.",
            (
                f"Data: {train}, the last {self.validation_split:.0%} held out for validation "
                "(Keras `validation_split`), pixels scaled to [0, 1]; accuracy on the whole test set."
            ),
            (
                f"Float training: Adam (learning rate {self.learning_rate:g}), sparse categorical "
                f"cross-entropy on logits, epochs {self.dense_epochs}, batch size {self.dense_batch_size}."
            ),
            (
                f"QAT: `quantize_model` on a copy of the trained float model, then fine-tuning with a "
                f"fresh Adam (learning rate {self.qat_learning_rate:g}), epochs {self.qat_epochs}, "
                f"batch size {self.qat_batch_size}; a plain fine-tune of another copy with the same "
                "settings is the step-time and accuracy reference."
            ),
            (
                "TFLite files: the float model as float32; the float model as full-integer PTQ int8 "
                f"calibrated on the first {self.representative_examples} training images (reference, no "
                "retraining); the QAT model as int8 with its own ranges (kopt: `tflite_export.convert("
                'mode="int8")`; tfmot: `TFLiteConverter.from_keras_model` with `optimizations=[DEFAULT]`). '
                "Inputs and outputs stay float32."
            ),
            (
                "Accuracy and agreement: every file run in the LiteRT interpreter by the same code "
                "(`tflite_export.predict`) on the whole test set; agreement is the share of test images "
                "where the file's top-1 class equals its Keras model's (the QAT model for QAT files, "
                "the float model for PTQ files)."
            ),
            "Sizes: raw bytes of the .tflite file; ratios are to the same framework and seed's float32 file.",
            (
                "Step time: wall time between consecutive training-batch starts, median over every "
                "epoch after the first (tracing and warm-up excluded), as in the pruning benchmark. "
                "QAT and plain fine-tuning run in the same process on the same data order; plain "
                "fine-tuning is timed before and after QAT and the two pooled."
            ),
            (
                "Latency: `tflite_export.benchmark`, LiteRT interpreter with XNNPACK, 1 thread, batch 1, "
                f"{self.latency_warmup} untimed then {self.latency_runs} timed `invoke()` calls per round, "
                f"{self.latency_rounds} rounds with the files taking turns, median of the round medians; "
                "all files of both frameworks timed in the benchmark's own process, one seed's files together."
            ),
        ]
