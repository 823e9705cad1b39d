"""``kopt-optimize --help``: its usage and its flags by what they set (:mod:`kopt.utils.cli_help` prints them)."""

__all__ = ["OPTIMIZE_GROUPS", "OPTIMIZE_USAGE"]


OPTIMIZE_USAGE = """kopt-optimize: train a float model, optimize it, export both to TFLite, report.

usage: kopt-optimize [--flag=value ...]
  kopt-optimize                          prune 75% + int8 QAT of the small CNN on the bundled digits
  kopt-optimize --prune=0.8 --qat        choose the techniques yourself
  kopt-optimize --recipe=run.yaml        every setting from a recipe file (flags override it)
--verbosity=1 shows TensorFlow's own log lines and tracebacks; --helpfull lists every library's flags."""

# kopt-optimize's flags by what they set.
OPTIMIZE_GROUPS = (
    ("Run", ["recipe", "export_dir", "report", "seed", "deterministic", "techniques"]),
    ("Data and model", ["dataset", "data_dir", "download", "num_classes", "validation_split", "model"]),
    ("Float training", ["epochs", "batch_size", "learning_rate", "optimizer", "lr_schedule", "warmup_epochs",
                        "momentum", "weight_decay", "early_stopping_patience", "mixed_precision"]),
    ("Pruning", ["prune", "prune_schedule", "sparsity_m_by_n", "prune_structured"]),
    ("Clustering", ["cluster", "cluster_init", "cluster_per_channel"]),
    ("Quantization", ["qat", "qat_scheme", "ptq", "ptq_calibration", "quantized_io"]),
    ("Distillation", ["distill", "teacher", "student", "temperature", "alpha", "distillation"]),
    ("Fine-tuning of each technique", ["finetune_epochs", "finetune_learning_rate"]),
    ("Accuracy-aware compression", ["auto", "max_accuracy_drop", "target_sparsity", "target_gzip_kb", "time_budget"]),
    ("Hyperparameter search", ["tune", "max_trials", "tune_dir", "size_budget_kib"]),
    ("Distributed training", ["strategy", "num_gpus", "tpu"]),
)  # fmt: skip
