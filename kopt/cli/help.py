"""``kopt-optimize --help``: its usage and its flags by what they set (:mod:`tflite_export.cli_help` prints them)."""

from kopt.cli import technique_flags

__all__ = ["OPTIMIZE_GROUPS", "OPTIMIZE_USAGE"]


OPTIMIZE_USAGE = """kopt-optimize: train a float model, optimize it, export both to TFLite, report.

usage: kopt-optimize [--flag=value ...]
  kopt-optimize                          prune 75% + int8 QAT of the small CNN on the bundled digits
  kopt-optimize --prune=0.8 --qat        choose the techniques yourself
  kopt-optimize --recipe=run.yaml        every setting from a recipe file (flags override it)
--verbosity=1 shows TensorFlow's own log lines and tracebacks; --helpfull lists every library's flags."""

# kopt-optimize's flags by what they set; the technique groups come from the techniques' settings.
OPTIMIZE_GROUPS = (
    ("Run", ["recipe", "export_dir", "report", "seed", "deterministic", "techniques"]),
    ("Data and model", ["dataset", "data_dir", "download", "num_classes", "image_size", "audio_samples",
                        "validation_split", "model", "custom_layers",
                        "init_from"]),
    ("Float training", ["epochs", "batch_size", "learning_rate", "optimizer", "lr_schedule", "warmup_epochs",
                        "momentum", "weight_decay", "early_stopping_patience", "batch_norm_batches",
                        "mixed_precision"]),
    *((title, list(names)) for title, names in technique_flags.GROUPS.items()),
    ("Hyperparameter search", ["tune", "max_trials", "tune_dir", "size_budget_kib"]),
    ("Distributed training", ["strategy", "num_gpus", "tpu"]),
)  # fmt: skip
