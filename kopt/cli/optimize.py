"""``kopt-optimize``: train a float baseline, optimize it, export TFLite, report.

Flags become a :class:`kopt.pipeline.Recipe`; :func:`kopt.pipeline.run` does the
work. With no flags it trains the built-in small CNN on the bundled ``digits`` data,
prunes it to 75% sparsity, quantizes it with int8 QAT (``--techniques=none``: float
only) and writes ``kopt_export/{baseline,optimized}.{keras,tflite}``::

    kopt-optimize --report=report.json
    kopt-optimize --dataset=npz:mnist.npz --epochs=3 --export_dir=/tmp/out
    kopt-optimize --recipe=examples/recipes/prune_qat.yaml --seed=1
    kopt-optimize --recipe=report.json          # reruns the run a report describes
    kopt-optimize --prune=0.8 --tune=bayesian --max_trials=10 --size_budget_kib=40

Bad settings print one line, ``kopt-optimize: error: --flag=value: reason``, and
exit with status 2; ``--verbosity=1`` adds the traceback.
"""

import functools
import logging as std_logging
import os
import sys

from absl import app
from absl import flags
from absl import logging

from kopt.distribute import flags as distribute_flags
from kopt.training import flags as training_flags

_DATASET = flags.DEFINE_string(
    "dataset",
    "digits",
    "digits (bundled, offline), mnist, fashion_mnist, cifar10, tfds:NAME or npz:PATH.",
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TensorFlow Datasets data directory.")
_DOWNLOAD = flags.DEFINE_bool("download", False, "Let TensorFlow Datasets download missing data.")
_NUM_CLASSES = flags.DEFINE_integer(
    "num_classes", None, "The class count, when the training labels do not show every class (default: inferred)."
)
_MODEL = flags.DEFINE_string("model", "small_cnn", "Built-in model name, or a path to a .keras classifier.")
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Float (baseline) training epochs.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Batch size for training and evaluation.")
_RECIPE = flags.DEFINE_string(
    "recipe",
    None,
    "A YAML/JSON recipe file (or a kopt-optimize JSON report) describing the whole run; flags given override it.",
)
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Peak learning rate of float training.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed for initialization and shuffling.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", "kopt_export", "Directory for .keras and .tflite files; existing files are kept."
)
_REPORT = flags.DEFINE_string("report", None, "Write the report as JSON to this path (and a PNG beside it).")
_TECHNIQUES = flags.DEFINE_enum(
    "techniques",
    "default",
    ["default", "none"],
    "default: with no technique flag, prune to 75% sparsity then int8 QAT (a technique flag replaces this); "
    "none: train and export the float model only.",
)
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
_CLUSTER = flags.DEFINE_integer(
    "cluster", None, "Cluster each clusterable layer's weights into this many shared values, e.g. 16."
)
_CLUSTER_INIT = flags.DEFINE_enum(
    "cluster_init",
    "kmeans_plus_plus",
    ["kmeans_plus_plus", "density_based", "linear", "random"],
    "Where --cluster centroids start.",
)
_CLUSTER_PER_CHANNEL = flags.DEFINE_bool(
    "cluster_per_channel", False, "With --cluster: that many values per output channel instead of per layer."
)
_DISTILL = flags.DEFINE_bool(
    "distill", False, "Distil the trained model (or --teacher) into a small --student trained from scratch."
)
_TEACHER = flags.DEFINE_string("teacher", None, "With --distill: a .keras teacher instead of the trained baseline.")
_STUDENT = flags.DEFINE_string("student", "tiny_cnn", "With --distill: the built-in student model.")
_TEMPERATURE = flags.DEFINE_float("temperature", 4.0, "With --distill: the softening temperature T.")
_ALPHA = flags.DEFINE_float("alpha", 0.1, "With --distill: weight of the hard-label loss (the soft loss gets 1-alpha).")
_QAT = flags.DEFINE_bool("qat", False, "Quantization-aware training, then a fully integer TFLite export.")
_QAT_SCHEME = flags.DEFINE_enum(
    "qat_scheme", "8bit", ["8bit", "16x8", "4bit"], "QAT scheme: TFLite int8, int16 activations, or 4-bit weights."
)
_PTQ = flags.DEFINE_enum(
    "ptq", None, ["int8", "int16x8", "float16", "dynamic"], "Post-training quantization of the export (no retraining)."
)
_PTQ_CALIBRATION = flags.DEFINE_enum(
    "ptq_calibration",
    None,
    ["kopt", "converter"],
    "Who calibrates an integer --ptq: kopt (default for int8: QAT's graph with calibrated ranges, no training) "
    "or the TFLite converter (the only choice for int16x8; for layers kopt cannot quantize).",
)
_QUANTIZED_IO = flags.DEFINE_enum(
    "quantized_io", "float32", ["float32", "int8", "uint8"], "Input/output type of an int8 --qat or --ptq file."
)
_DISTILLATION = flags.DEFINE_enum(
    "distillation", "soft", ["soft", "hard"], "With --distill: the teacher's softened outputs, or its top class as labels."
)
_VALIDATION_SPLIT = flags.DEFINE_float(
    "validation_split",
    None,
    "Share of the training data held out for validation (default 0.1 when --lr_schedule=plateau, "
    "--early_stopping_patience or --tune need one, else none). The test split is never used to choose.",
)
_TUNE = flags.DEFINE_enum(
    "tune",
    "none",
    ["none", "random", "bayesian", "hyperband"],
    "Search the recipe's hyperparameters with KerasTuner, on validation accuracy, then train the best.",
)
_MAX_TRIALS = flags.DEFINE_integer("max_trials", 10, "With --tune: the number of trials.")
_TUNE_DIR = flags.DEFINE_string("tune_dir", None, "With --tune: KerasTuner's folder; rerunning resumes from it.")
_SIZE_BUDGET_KIB = flags.DEFINE_float(
    "size_budget_kib", None, "With --tune: the gzipped optimized .tflite must fit in this many KiB."
)
_FINETUNE_EPOCHS = flags.DEFINE_integer("finetune_epochs", 4, "Fine-tuning epochs of each technique.")
_FINETUNE_LEARNING_RATE = flags.DEFINE_float(
    "finetune_learning_rate",
    None,
    "Fine-tuning learning rate; defaults to --learning_rate (a tenth of it for --qat).",
)

# --strategy, --num_gpus and --tpu; --optimizer, --lr_schedule, --mixed_precision...:
# the same flags as the examples.
distribute_flags.define_flags()
training_flags.define_flags()
from kopt.cli import auto_flags  # noqa: E402 - defines --auto and its budget flags.
from kopt.cli import stage_flags  # noqa: E402 - reads the flags above.

# Recipe keys that technique stages report errors under, and the flag that set them.
_FLAG_FOR_KEY = {
    "distill.student": "student",
    "distill.teacher": "teacher",
    "distill.temperature": "temperature",
    "distill.alpha": "alpha",
    "distill.distillation": "distillation",
    "distill.epochs": "epochs",
    "distill.learning_rate": "learning_rate",
    "prune.target_sparsity": "prune",
    "prune.schedule": "prune_schedule",
    "prune.sparsity_m_by_n": "sparsity_m_by_n",
    "prune.epochs": "finetune_epochs",
    "prune.learning_rate": "finetune_learning_rate",
    "prune_structured.fraction": "prune_structured",
    "prune_structured.epochs": "finetune_epochs",
    "prune_structured.learning_rate": "finetune_learning_rate",
    "cluster.number_of_clusters": "cluster",
    "cluster.init": "cluster_init",
    "cluster.cluster_per_channel": "cluster_per_channel",
    "cluster.epochs": "finetune_epochs",
    "cluster.learning_rate": "finetune_learning_rate",
    "qat.scheme": "qat_scheme",
    "qat.io_type": "quantized_io",
    "qat.epochs": "finetune_epochs",
    "qat.learning_rate": "finetune_learning_rate",
    "ptq.mode": "ptq",
    "ptq.io_type": "quantized_io",
    "ptq.calibration": "ptq_calibration",
    "search.tuner": "tune",
    "search.max_trials": "max_trials",
    "search.directory": "tune_dir",
    "search.size_budget_kib": "size_budget_kib",
    **auto_flags.FLAG_FOR_KEY,
}
_PROGRAM = "kopt-optimize"
_USAGE_EXIT = 2
_PREEMPTED_EXIT = 143


def recipe_from_flags():
    """Builds the run's :class:`kopt.pipeline.Recipe` from the parsed flags.

    With ``--recipe``, the file's recipe with the flags given on the command
    line set over it.
    """
    from kopt.pipeline.recipe_file import recipe_from_dict

    if _RECIPE.value is not None:
        return recipe_from_dict(file_with_flags()[0])
    return _recipe_from_flags_alone()


def file_with_flags():
    """The ``--recipe`` file's mapping with the given flags set over it.

    Returns:
        ``(data, paths)``: the mapping, and ``{key_path: flag}`` for the keys
        flags set, so an error about such a key names the flag.
    """
    from kopt.cli.recipe_flags import FLAG_KEYS
    from kopt.cli.recipe_flags import apply_flags
    from kopt.pipeline.recipe_file import read_recipe_file

    if _TECHNIQUES.present:
        from kopt.errors import ConfigError

        raise ConfigError("--techniques", _TECHNIQUES.value, "a --recipe file lists its own techniques")
    data = read_recipe_file(_RECIPE.value)
    given = {name: _recipe_value(name) for name in FLAG_KEYS if flags.FLAGS[name].present}
    return data, apply_flags(data, given)


def _recipe_from_flags_alone():
    from kopt.pipeline import Recipe

    stage_flags.check_flags_need_stage()  # --max_trials without --tune, --qat_scheme without --qat...
    search = None
    if _TUNE.value != "none":
        search = {
            "tuner": _TUNE.value,
            "max_trials": _MAX_TRIALS.value,
            "directory": _TUNE_DIR.value,
            "size_budget_kib": _SIZE_BUDGET_KIB.value,
        }
    training = {name: flags.FLAGS[name].value for name in training_flags.FLAG_NAMES}
    return Recipe(
        dataset=_DATASET.value,
        data_dir=_DATA_DIR.value,
        download=_DOWNLOAD.value,
        num_classes=_NUM_CLASSES.value,
        model=_MODEL.value,
        epochs=_EPOCHS.value,
        batch_size=_BATCH_SIZE.value,
        learning_rate=_LEARNING_RATE.value,
        validation_split=_VALIDATION_SPLIT.value,
        search=search,
        seed=_SEED.value,
        export_dir=_EXPORT_DIR.value,
        report=_REPORT.value,
        techniques=stage_flags.techniques_from_flags(),
        strategy=flags.FLAGS.strategy,
        num_gpus=flags.FLAGS.num_gpus,
        tpu=flags.FLAGS.tpu,
        **training,
    )


def _recipe_value(name):
    value = flags.FLAGS[name].value
    return stage_flags.parse_m_by_n(value) if name == "sparsity_m_by_n" else value


def main(argv):
    if len(argv) > 1:
        _usage_error(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    if not _verbose():
        # absl's INFO verbosity, which shows kopt's progress, would also let through
        # TensorFlow's per-export INFO chatter.
        std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)
        logging.get_absl_handler().addFilter(_only_kopt_info)
    import tflite_export

    from kopt.distribute import Preempted
    from kopt.errors import ConfigError
    from kopt.errors import OutputError
    from kopt.errors import TrainingError
    from kopt.pipeline import format_table
    from kopt.pipeline import format_trials
    from kopt.pipeline import run

    from kopt.pipeline.recipe_file import recipe_from_dict

    paths = None
    try:
        if _RECIPE.value is not None:
            data, paths = file_with_flags()
            recipe = recipe_from_dict(data)
        else:
            recipe = _recipe_from_flags_alone()
        report = run(recipe)
    except ConfigError as err:
        if _verbose():
            raise
        _config_error(err, paths)
    except Preempted as err:
        # SIGTERM (preemption): everything trained is backed up; 143 = 128 + SIGTERM, as a killed process.
        print(f"{_PROGRAM}: preempted: {err}", file=sys.stderr)
        sys.exit(_PREEMPTED_EXIT)
    except (tflite_export.ConversionError, TrainingError, OutputError) as err:
        # After work was done: exit 1, and the message says what was kept.
        if _verbose():
            raise
        print(f"{_PROGRAM}: error: {err}", file=sys.stderr)
        sys.exit(1)
    if "trials" in report:
        print(format_trials(report["trials"]))
        print()
    print(format_table(report))
    for name, path in report["files"].items():
        print(f"{name}: {path}")


def _config_error(err, paths):
    """Exits with the one-line message for ``err``, naming the flag or the file's key.

    Values are quoted through :func:`kopt.errors.shown`, so the line stays short
    whatever was passed.
    """
    from kopt.errors import shown

    if err.key.startswith("--"):
        _usage_error(f"{err.key}={shown(err.value)}: {err.reason}")
    if _RECIPE.value is None or err.key == "recipe":
        flag = _FLAG_FOR_KEY.get(err.key, err.key)
        if flag in flags.FLAGS:
            _usage_error(f"--{flag}={shown(flags.FLAGS[flag].value)}: {err.reason}")
        _usage_error(f"--{err.key}={shown(err.value)}: {err.reason}")
    flag = (paths or {}).get(err.key)
    if flag is None and err.key in flags.FLAGS and flags.FLAGS[err.key].present:
        flag = err.key
    if flag is not None:
        _usage_error(f"--{flag}={shown(flags.FLAGS[flag].value)}: {err.reason}")
    _usage_error(f"{shown(_RECIPE.value)}: {err.key}={shown(err.value)}: {err.reason}")


@functools.cache
def _package_folders():
    import kopt
    import tflite_export

    return tuple(os.path.join(os.path.dirname(os.path.realpath(m.__file__)), "") for m in (kopt, tflite_export))


def _only_kopt_info(record):
    # TensorFlow's own modules log through absl too; at the default verbosity only
    # kopt's progress lines and everyone's warnings are shown.
    if record.levelno >= std_logging.WARNING:
        return True
    # By the package folders themselves: a path that merely contains "/kopt/" (a
    # virtual environment inside a clone named kopt) is not kopt's.
    return os.path.realpath(record.pathname).startswith(_package_folders())


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
    from kopt.cli.help import OPTIMIZE_GROUPS
    from kopt.cli.help import OPTIMIZE_USAGE
    from kopt.utils import cli_help

    arguments = sys.argv if argv is None else argv
    if cli_help.wants_help(arguments):  # absl's --help lists only the main module's flags: none of these
        print(cli_help.format_help(OPTIMIZE_USAGE, cli_help.kopt_flags(flags.FLAGS), OPTIMIZE_GROUPS))
        sys.exit(0)
    if cli_help.wants_version(arguments):
        from kopt.version import __version__

        print(f"{_PROGRAM} {__version__}")
        sys.exit(0)
    # Progress goes to absl's INFO log; absl's own default shows warnings only.
    flags.FLAGS.set_default("verbosity", logging.INFO)
    app.run(main, argv=argv, flags_parser=_parse_flags)


if __name__ == "__main__":
    run_app()
