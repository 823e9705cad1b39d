"""``kopt-optimize``: train a float baseline, optimize it, export TFLite, report.

Flags become a :class:`kopt.pipeline.Recipe`; :func:`kopt.pipeline.run` does the
work. With no flags it trains the built-in small CNN on the bundled ``digits`` data
and writes ``kopt_export/{baseline,optimized}.{keras,tflite}``::

    kopt-optimize --report=report.json
    kopt-optimize --dataset=npz:mnist.npz --epochs=3 --export_dir=/tmp/out

Bad settings print one line, ``kopt-optimize: error: --flag=value: reason``, and
exit with status 2; ``--verbosity=1`` adds the traceback.
"""

import logging as std_logging
import sys

from absl import app
from absl import flags
from absl import logging

_DATASET = flags.DEFINE_string(
    "dataset",
    "digits",
    "digits (bundled, offline), mnist, fashion_mnist, cifar10, tfds:NAME or npz:PATH.",
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TensorFlow Datasets data directory.")
_DOWNLOAD = flags.DEFINE_bool("download", False, "Let TensorFlow Datasets download missing data.")
_MODEL = flags.DEFINE_string("model", "small_cnn", "Built-in model name, or a path to a .keras classifier.")
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Float (baseline) training epochs.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Batch size for training and evaluation.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate for float training.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed for initialization and shuffling.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", "kopt_export", "Directory for .keras and .tflite files; existing files are kept."
)
_REPORT = flags.DEFINE_string("report", None, "Write the report as JSON to this path (and a PNG beside it).")
_PRUNE = flags.DEFINE_float("prune", None, "Magnitude-prune every prunable layer to this sparsity, e.g. 0.8.")
_PRUNE_SCHEDULE = flags.DEFINE_enum(
    "prune_schedule", "polynomial", ["polynomial", "constant"], "How sparsity reaches --prune during fine-tuning."
)
_SPARSITY_M_BY_N = flags.DEFINE_string(
    "sparsity_m_by_n", None, "M,N: M zeros in every N consecutive weights, as tfmot (e.g. 2,4); implies sparsity M/N."
)
_PRUNE_STRUCTURED = flags.DEFINE_float(
    "prune_structured", None, "Remove this fraction of channels from each Conv2D/Dense layer, e.g. 0.5."
)
_QAT = flags.DEFINE_bool("qat", False, "Quantization-aware training, then a fully integer TFLite export.")
_QAT_SCHEME = flags.DEFINE_enum(
    "qat_scheme", "8bit", ["8bit", "16x8", "4bit"], "QAT scheme: TFLite int8, int16 activations, or 4-bit weights."
)
_PTQ = flags.DEFINE_enum(
    "ptq", None, ["int8", "int16x8", "float16", "dynamic"], "Post-training quantization of the export (no retraining)."
)
_QUANTIZED_IO = flags.DEFINE_enum(
    "quantized_io", "float32", ["float32", "int8", "uint8"], "Input/output type of an int8 --qat or --ptq file."
)
_FINETUNE_EPOCHS = flags.DEFINE_integer("finetune_epochs", 4, "Fine-tuning epochs of each technique.")
_FINETUNE_LEARNING_RATE = flags.DEFINE_float(
    "finetune_learning_rate",
    None,
    "Fine-tuning learning rate; defaults to --learning_rate (a tenth of it for --qat).",
)

# Recipe keys that technique stages report errors under, and the flag that set them.
_FLAG_FOR_KEY = {
    "prune.target_sparsity": "prune",
    "prune.schedule": "prune_schedule",
    "prune.sparsity_m_by_n": "sparsity_m_by_n",
    "prune.epochs": "finetune_epochs",
    "prune.learning_rate": "finetune_learning_rate",
    "prune_structured.fraction": "prune_structured",
    "prune_structured.epochs": "finetune_epochs",
    "prune_structured.learning_rate": "finetune_learning_rate",
    "qat.scheme": "qat_scheme",
    "qat.io_type": "quantized_io",
    "qat.epochs": "finetune_epochs",
    "qat.learning_rate": "finetune_learning_rate",
    "ptq.mode": "ptq",
    "ptq.io_type": "quantized_io",
}

_PROGRAM = "kopt-optimize"
_USAGE_EXIT = 2


def recipe_from_flags():
    """Builds the run's :class:`kopt.pipeline.Recipe` from the parsed flags."""
    from kopt.pipeline import Recipe

    return Recipe(
        dataset=_DATASET.value,
        data_dir=_DATA_DIR.value,
        download=_DOWNLOAD.value,
        model=_MODEL.value,
        epochs=_EPOCHS.value,
        batch_size=_BATCH_SIZE.value,
        learning_rate=_LEARNING_RATE.value,
        seed=_SEED.value,
        export_dir=_EXPORT_DIR.value,
        report=_REPORT.value,
        techniques=techniques_from_flags(),
    )


def techniques_from_flags():
    """The technique stages the flags ask for, in the order they are applied.

    Structured pruning comes first (it changes the architecture), then magnitude
    pruning, then quantization (QAT or PTQ, not both). The driver finds each stage
    by name in :mod:`kopt.pipeline.techniques`.
    """
    from kopt.errors import ConfigError
    from kopt.pipeline import TechniqueSpec

    fine_tune = {"epochs": _FINETUNE_EPOCHS.value, "learning_rate": _FINETUNE_LEARNING_RATE.value}
    specs = []
    if _PRUNE_STRUCTURED.value is not None:
        specs.append(TechniqueSpec("prune_structured", {"fraction": _PRUNE_STRUCTURED.value, **fine_tune}))
    m_by_n = _parse_m_by_n(_SPARSITY_M_BY_N.value)
    if _PRUNE.value is not None or m_by_n is not None:
        params = {"target_sparsity": _PRUNE.value, "schedule": _PRUNE_SCHEDULE.value, **fine_tune}
        if m_by_n is not None:
            params["sparsity_m_by_n"] = m_by_n
        specs.append(TechniqueSpec("prune", params))
    if _QAT.value and _PTQ.value is not None:
        raise ConfigError("ptq", _PTQ.value, "choose --qat or --ptq, not both: QAT already exports an integer model")
    if _QAT.value:
        specs.append(TechniqueSpec("qat", {"scheme": _QAT_SCHEME.value, "io_type": _QUANTIZED_IO.value, **fine_tune}))
    if _PTQ.value is not None:
        specs.append(TechniqueSpec("ptq", {"mode": _PTQ.value, "io_type": _QUANTIZED_IO.value}))
    return tuple(specs)


def _parse_m_by_n(text):
    from kopt.errors import ConfigError

    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ConfigError("sparsity_m_by_n", text, "must be two integers M,N such as 2,4")
    return [int(part) for part in parts]


def main(argv):
    if len(argv) > 1:
        _usage_error(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    if not _verbose():
        # absl's INFO verbosity, which shows kopt's progress, would also let through
        # TensorFlow's per-export INFO chatter.
        std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)
        logging.get_absl_handler().addFilter(_only_kopt_info)
    import tflite_export

    from kopt.errors import ConfigError
    from kopt.pipeline import format_table
    from kopt.pipeline import run

    try:
        report = run(recipe_from_flags())
    except ConfigError as err:
        if _verbose():
            raise
        flag = _FLAG_FOR_KEY.get(err.key)
        if flag is not None:
            _usage_error(f"--{flag}={flags.FLAGS[flag].value}: {err.reason}")
        key = err.key if err.key.startswith("-") else f"--{err.key}"
        _usage_error(f"{key}={err.value}: {err.reason}")
    except tflite_export.ConversionError as err:
        if _verbose():
            raise
        print(f"{_PROGRAM}: error: {err}", file=sys.stderr)
        sys.exit(1)
    print(format_table(report))
    for name, path in report["files"].items():
        print(f"{name}: {path}")


def _only_kopt_info(record):
    # TensorFlow's own modules log through absl too; at the default verbosity only
    # kopt's progress lines and everyone's warnings are shown.
    if record.levelno >= std_logging.WARNING:
        return True
    path = record.pathname.replace("\\", "/")
    return "/kopt/" in path or "/tflite_export/" in path


def _verbose():
    return flags.FLAGS["verbosity"].value >= 1


def _usage_error(message):
    print(f"{_PROGRAM}: error: {message}", file=sys.stderr)
    sys.exit(_USAGE_EXIT)


def _parse_flags(argv):
    # absl exits with status 1 and a page of usage on a bad flag; kopt promises one
    # line and status 2, like argparse.
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        _usage_error(str(err))


def run_app(argv=None):
    """Runs ``kopt-optimize`` with ``argv`` (default ``sys.argv``)."""
    # Progress goes to absl's INFO log; absl's own default shows warnings only.
    flags.FLAGS.set_default("verbosity", logging.INFO)
    app.run(main, argv=argv, flags_parser=_parse_flags)


if __name__ == "__main__":
    run_app()
