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
    kopt-optimize --init_from=trained.keras --epochs=2   # start from a trained model's weights

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

import kopt
import tflite_export
from kopt.data.folders import image_size_of
from kopt.distribute import Preempted
from kopt.distribute import flags as distribute_flags
from kopt.errors import ConfigError
from kopt.errors import OutputError
from kopt.errors import TrainingError
from kopt.errors import shown
from kopt.pipeline import Recipe
from kopt.pipeline import format_table
from kopt.pipeline import format_trials
from kopt.pipeline import run
from kopt.pipeline.recipe_file import read_recipe_file
from kopt.pipeline.recipe_file import recipe_from_dict
from kopt.training import flags as training_flags
from kopt.version import __version__
from tflite_export import cli_help

_DATASET = flags.DEFINE_string(
    "dataset",
    "digits",
    "digits (bundled, offline), mnist, fashion_mnist, cifar10, tfds:NAME, npz:PATH, or dir:FOLDER (one subfolder "
    "of images or WAV clips per class; train/ and test/ inside, or a fifth of each class held out for testing).",
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TensorFlow Datasets data directory.")
_DOWNLOAD = flags.DEFINE_bool("download", False, "Let TensorFlow Datasets download missing data.")
_NUM_CLASSES = flags.DEFINE_integer(
    "num_classes", None, "The class count, when the training labels do not show every class (default: inferred)."
)
_IMAGE_SIZE = flags.DEFINE_string(
    "image_size",
    None,
    "HEIGHT,WIDTH (or one side, for a square) to resize every image to, bilinear: a dir: folder of photos of many "
    "sizes, a TFDS dataset of variable-size images, or images for a model that takes another size.",
)
_AUDIO_SAMPLES = flags.DEFINE_integer(
    "audio_samples",
    None,
    "Pad (with zeros) or cut every WAV clip of a dir: folder to this many samples, e.g. 16000 for 1 s at 16 kHz "
    "(default: pad to the longest clip).",
)
_MODEL = flags.DEFINE_string("model", "small_cnn", "Built-in model name, or a path to a .keras classifier.")
_CUSTOM_LAYERS = flags.DEFINE_list(
    "custom_layers",
    None,
    "Comma-separated module names or .py files to import before loading --model (and a teacher or student): the "
    "ones that register its own layers with @keras.saving.register_keras_serializable.",
)
_INIT_FROM = flags.DEFINE_string(
    "init_from",
    None,
    "A .keras file whose weights the model starts from before training: those that fit, matched by layer name "
    "(a resized layer gets the overlap); the report lists what was copied.",
)
_EPOCHS = flags.DEFINE_integer(
    "epochs", 10, "Float (baseline) training epochs; 0 uses --model as given (a trained .keras file), untouched."
)
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
_VALIDATION_SPLIT = flags.DEFINE_float(
    "validation_split",
    None,
    "Share of the training data held out for validation (default 0.1 when --lr_schedule=plateau, "
    "--early_stopping_patience or --tune need one, else none). The test split is never used to choose.",
)

# --strategy, --num_gpus and --tpu; --optimizer, --lr_schedule, --mixed_precision...:
# the same flags as the examples. The technique and search flags come with their modules.
distribute_flags.define_flags()
training_flags.define_flags()
from kopt.cli import search_flags  # noqa: E402 - defines --tune and its flags.
from kopt.cli import stage_flags  # noqa: E402 - reads the flags above.
from kopt.cli import technique_flags  # noqa: E402 - defines the technique flags.
from kopt.cli.help import OPTIMIZE_GROUPS  # noqa: E402
from kopt.cli.help import OPTIMIZE_USAGE  # noqa: E402
from kopt.cli.recipe_flags import FLAG_KEYS  # noqa: E402
from kopt.cli.recipe_flags import apply_flags  # noqa: E402

# Recipe keys that stages and the search report errors under, and the flag that set them.
_FLAG_FOR_KEY = {**technique_flags.FLAG_FOR_KEY, **search_flags.SEARCH_FLAG_FOR_KEY}
_PROGRAM = "kopt-optimize"
_USAGE_EXIT = 2
_PREEMPTED_EXIT = 143


def recipe_from_flags():
    """Builds the run's :class:`kopt.pipeline.Recipe` from the parsed flags.

    With ``--recipe``, the file's recipe with the flags given on the command
    line set over it.
    """
    if _RECIPE.value is not None:
        return recipe_from_dict(file_with_flags()[0])
    return _recipe_from_flags_alone()


def file_with_flags():
    """The ``--recipe`` file's mapping with the given flags set over it.

    Returns:
        ``(data, paths)``: the mapping, and ``{key_path: flag}`` for the keys
        flags set, so an error about such a key names the flag.
    """
    if _TECHNIQUES.present:
        raise ConfigError("--techniques", _TECHNIQUES.value, "a --recipe file lists its own techniques")
    data = read_recipe_file(_RECIPE.value)
    given = {name: _recipe_value(name) for name in FLAG_KEYS if flags.FLAGS[name].present}
    return data, apply_flags(data, given)


def _recipe_from_flags_alone():
    stage_flags.check_flags_need_stage()  # --max_trials without --tune, --qat_scheme without --qat...
    training = {name: flags.FLAGS[name].value for name in training_flags.FLAG_NAMES}
    return Recipe(
        dataset=_DATASET.value,
        data_dir=_DATA_DIR.value,
        download=_DOWNLOAD.value,
        num_classes=_NUM_CLASSES.value,
        image_size=_image_size(_IMAGE_SIZE.value),
        audio_samples=_AUDIO_SAMPLES.value,
        model=_MODEL.value,
        custom_layers=_CUSTOM_LAYERS.value,
        init_from=_INIT_FROM.value,
        epochs=_EPOCHS.value,
        batch_size=_BATCH_SIZE.value,
        learning_rate=_LEARNING_RATE.value,
        validation_split=_VALIDATION_SPLIT.value,
        search=search_flags.search_from_flags(),
        seed=_SEED.value,
        export_dir=_EXPORT_DIR.value,
        report=_REPORT.value,
        techniques=stage_flags.techniques_from_flags(),
        strategy=flags.FLAGS.strategy,
        num_gpus=flags.FLAGS.num_gpus,
        tpu=flags.FLAGS.tpu,
        **training,
    )


def _image_size(value):
    """``--image_size`` as the recipe's ``[height, width]`` (a bad value fails the recipe's check, naming the flag)."""
    if value is None:
        return None
    try:
        return list(image_size_of("image_size", value))
    except ConfigError:
        return value


def _recipe_value(name):
    value = flags.FLAGS[name].value
    if name == "image_size":
        return _image_size(value)
    parse = technique_flags.PARSE.get(name)
    return value if parse is None else parse(value)


def main(argv):
    if len(argv) > 1:
        _usage_error(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    if not _verbose():
        # absl's INFO verbosity, which shows kopt's progress, would also let through
        # TensorFlow's per-export INFO chatter.
        std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)
        logging.get_absl_handler().addFilter(_only_kopt_info)
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
    if err.key.startswith("--"):
        _usage_error(f"{err.key}={shown(err.value)}: {err.reason}")
    if _RECIPE.value is None or err.key == "recipe":
        flag = _FLAG_FOR_KEY.get(err.key, err.key)
        if flag in flags.FLAGS:
            _usage_error(f"--{flag}={_shown_flag(flag)}: {err.reason}")
        _usage_error(f"--{err.key}={shown(err.value)}: {err.reason}")
    flag = (paths or {}).get(err.key)
    if flag is None and err.key in flags.FLAGS and flags.FLAGS[err.key].present:
        flag = err.key
    if flag is not None:
        _usage_error(f"--{flag}={_shown_flag(flag)}: {err.reason}")
    _usage_error(f"{shown(_RECIPE.value)}: {err.key}={shown(err.value)}: {err.reason}")


def _shown_flag(flag):
    """A flag's value as it was typed: a list flag's items joined by commas."""
    value = flags.FLAGS[flag].value
    return shown(",".join(map(str, value)) if isinstance(value, list) else value)


@functools.cache
def _package_folders():
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
    arguments = sys.argv if argv is None else argv
    if cli_help.wants_help(arguments):  # absl's --help lists only the main module's flags: none of these
        print(cli_help.format_help(OPTIMIZE_USAGE, cli_help.package_flags(flags.FLAGS), OPTIMIZE_GROUPS))
        sys.exit(0)
    if cli_help.wants_version(arguments):
        print(f"{_PROGRAM} {__version__}")
        sys.exit(0)
    # Progress goes to absl's INFO log; absl's own default shows warnings only.
    flags.FLAGS.set_default("verbosity", logging.INFO)
    app.run(main, argv=argv, flags_parser=_parse_flags)


if __name__ == "__main__":
    run_app()
