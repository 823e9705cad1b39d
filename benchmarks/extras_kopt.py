"""The rows the per-technique benchmarks leave out: settings, and kopt's side for one seed.

For one seed: train the float CNN of the pruning benchmark (``pruning_kopt``),
then from copies of it

* ``float32``: the float model itself; a plain fine-tune of another copy is the
  step-time reference, timed before and after the rows and pooled;
* ``m_by_n_2_4``: ``prune_low_magnitude(sparsity_m_by_n=(2, 4))``, fine-tuned, stripped;
* ``structured``: ``prune_channels`` removes half the filters of every layer but
  the classifier, then the smaller model is fine-tuned;
* ``keras_int8``: Keras 3's own ``model.quantize("int8")`` (``keras_quantize.py``),
  no training; exported to TFLite only if an exporter can.

Every row's Keras model saves its top-1 classes on the test set and, where one
exists, its float32 ``.tflite`` file; ``benchmarks/extras.py`` scores them with the
same code as the tfmot side's (``tfmot_extras_worker.py``).
"""

import dataclasses
import os
import time

from benchmarks import keras_quantize
from benchmarks import markdown
from benchmarks.clustering_kopt import ClusteringSettings
from benchmarks.core.data import load_arrays
from benchmarks.core.scoring import save_top1
from benchmarks.core.settings import SuiteSettings
from benchmarks.core.training import step_stats
from benchmarks.kopt_side import TRAINER
from benchmarks.kopt_side import build_model
from benchmarks.kopt_side import versions

KOPT_ROWS = ("float32", "m_by_n_2_4", "structured", "keras_int8")
TFMOT_ROWS = ("float32", "m_by_n_2_4", "cluster", "prune_cluster", "cluster_cqat_int8", "prune_cluster_pcqat_int8")


@dataclasses.dataclass(frozen=True)
class ExtrasSettings(SuiteSettings):
    """One configuration; field names are the keys both sides read.

    The float model trains as in the pruning benchmark. 2:4 and structured
    pruning fine-tune like the pruning benchmark's pruned models (2 epochs,
    batch 128, Adam 1e-3; masks updated every 100 steps). tfmot's clustering
    rows use ``clustering``, the settings of ``benchmarks/clustering.py``'s kopt
    rows, so the two can be read side by side.
    """

    dense_epochs: int = 4
    dense_batch_size: int = 32
    learning_rate: float = 1e-3
    validation_split: float = 0.1
    max_train_examples: int | None = None
    finetune_epochs: int = 2
    finetune_batch_size: int = 128
    mask_frequency: int = 100
    structured_fraction: float = 0.5
    clustering: ClusteringSettings = dataclasses.field(default_factory=ClusteringSettings)

    def __post_init__(self):
        self.require_at_least_one(
            "dense_epochs", "dense_batch_size", "finetune_epochs", "finetune_batch_size", "mask_frequency"
        )
        if not 0 < self.structured_fraction < 1:
            raise ValueError(
                f"structured_fraction must be in (0, 1). Received: structured_fraction={self.structured_fraction}"
            )
        if self.clustering.finetune_batch_size != self.finetune_batch_size:
            # One plain fine-tune is the step-time reference of every row.
            raise ValueError(
                "clustering.finetune_batch_size must equal finetune_batch_size. Received: "
                f"{self.clustering.finetune_batch_size} and {self.finetune_batch_size}"
            )

    @classmethod
    def quick(cls):
        """A smoke run: 4000 training examples, 1 float epoch, masks updated every 10 steps."""
        return cls(dense_epochs=1, max_train_examples=4000, mask_frequency=10, clustering=ClusteringSettings.quick())

    def describe(self):
        """Markdown bullet lines stating every setting."""
        train = markdown.training_examples(self.max_train_examples)
        return [
            (
                f"Float model: the pruning benchmark's CNN, {train}, the last {self.validation_split:.0%} held out; "
                f"Adam {self.learning_rate:g}, {self.dense_epochs} epochs, batch {self.dense_batch_size}."
            ),
            (
                f"Fine-tuning (plain reference, 2:4, structured): Adam {self.learning_rate:g}, "
                f"{self.finetune_epochs} epochs, batch {self.finetune_batch_size}; the plain fine-tune of the "
                "float model is timed before and after the rows and pooled."
            ),
            (
                f"2:4: `prune_low_magnitude(pruning_schedule=ConstantSparsity(0.5, begin_step=0, "
                f"frequency={self.mask_frequency}), sparsity_m_by_n=(2, 4))` (kopt and tfmot), stripped."
            ),
            (
                f"Structured (kopt only; tfmot has none): `prune_channels(model, {self.structured_fraction:g})`, "
                "lowest-L1 filters of every layer but the classifier, then fine-tuning of the smaller model."
            ),
            (
                'Keras int8: Keras 3\'s `model.quantize("int8")` on a copy of the float model, no training; '
                'TFLite export tried with Keras\' `model.export(format="litert")`, then `tflite_export.convert`.'
            ),
            f"tfmot clustering: the settings of the clustering benchmark ({self.clustering.describe()})",
        ]


def run(data, seed, settings, workdir, log=print):
    """Runs kopt's rows for one seed; ``settings`` is ``ExtrasSettings.as_dict()``.

    Returns:
        ``{"rows": {row: {"file", "keras_top1", "steps", "params", ...}},
        "plain_finetune": step stats, "framework", "seed", "versions", "wall_time_s"}``;
        a row without a file says why in ``file_errors``.
    """
    import tflite_export
    from kopt import pruning

    x_train, y_train, x_test, _ = load_arrays(data, settings["max_train_examples"])
    os.makedirs(workdir, exist_ok=True)
    started = time.perf_counter()

    def fine_tune(model, callbacks=()):
        return TRAINER.fit_timed(
            model,
            x_train,
            y_train,
            epochs=settings["finetune_epochs"],
            batch_size=settings["finetune_batch_size"],
            learning_rate=settings["learning_rate"],
            validation_split=settings["validation_split"],
            seed=seed,
            callbacks=callbacks,
            skip_epochs=1 if settings["finetune_epochs"] > 1 else 0,
        )

    def row(name, model, timer=None, export=True):
        entry = {
            "keras_top1": save_top1(model, x_test, os.path.join(workdir, f"{name}_top1.npy")),
            "steps": step_stats(timer) if timer else None,
            "params": int(model.count_params()),
            "file": None,
        }
        if export:
            entry["file"] = tflite_export.convert(model, os.path.join(workdir, f"{name}.tflite"), mode="float32")
        return entry

    log(f"kopt extras seed {seed}: float training, {settings['dense_epochs']} epochs")
    dense = TRAINER.train_dense(x_train, y_train, settings, seed, build_model)
    rows = {"float32": row("float32", dense)}
    log(f"kopt extras seed {seed}: plain fine-tuning (step-time reference)")
    plain_timer = fine_tune(TRAINER.copy_of(dense))

    log(f"kopt extras seed {seed}: 2:4 pruning")
    schedule = pruning.ConstantSparsity(0.5, begin_step=0, frequency=settings["mask_frequency"])
    m_by_n = pruning.prune_low_magnitude(TRAINER.copy_of(dense), pruning_schedule=schedule, sparsity_m_by_n=(2, 4))
    timer = fine_tune(m_by_n, [pruning.UpdatePruningStep()])
    rows["m_by_n_2_4"] = row("m_by_n_2_4", pruning.strip_pruning(m_by_n), timer)

    log(f"kopt extras seed {seed}: structured pruning, fraction {settings['structured_fraction']:g}")
    smaller = pruning.prune_channels(TRAINER.copy_of(dense), settings["structured_fraction"])
    timer = fine_tune(smaller)
    rows["structured"] = row("structured", smaller, timer)

    log(f"kopt extras seed {seed}: Keras model.quantize('int8')")
    quantized, info = keras_quantize.quantize_int8(dense, TRAINER.copy_of)
    rows["keras_int8"] = {**row("keras_int8", quantized, export=False), **info}
    path, errors = keras_quantize.export(quantized, os.path.join(workdir, "keras_int8.tflite"))
    rows["keras_int8"].update(file=path, file_errors=errors)

    # Timed again after the rows and pooled, so a change in machine load during
    # the run weighs on both sides of the ratio.
    log(f"kopt extras seed {seed}: plain fine-tuning again (step-time reference)")
    plain_timer.extend(fine_tune(TRAINER.copy_of(dense)))
    return {
        "rows": rows,
        "plain_finetune": step_stats(plain_timer),
        "framework": "kopt",
        "seed": seed,
        "versions": versions(),
        "wall_time_s": time.perf_counter() - started,
    }
