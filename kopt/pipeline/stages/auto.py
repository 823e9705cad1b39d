"""The ``auto`` stage: accuracy-aware compression under a budget (``kopt.auto.compress``).

Params (recipe keys under ``auto``; see :data:`kopt.auto.params.AUTO_PARAMS`):

* ``max_accuracy_drop``: points of validation accuracy the int8 model may lose
  against the float model (default 0.5).
* ``target_sparsity`` or ``target_gzip_kb``: stop once the kept model reaches this
  overall sparsity, or its gzipped int8 file this size in KiB (not both).
* ``time_budget``: seconds for the search, over all resumptions.
* ``epochs``, ``learning_rate``, ``batch_size``: fine-tuning per step (rate and
  batch default to the float ones).
* ``validation_fraction``: share of the training split held out to choose on
  (default 0.1) when the driver gives the stage no validation split of its own
  (``context.validation``); the test split is never used.
* ``steps``, ``criterion``, ``allocation``, ``fragile_drop``: as in ``compress``.
* ``calibration``: who calibrates the int8 files (``compress``'s
  ``int8_calibration``): ``"converter"``, ``"kopt"`` (kopt's PTQ: the model made
  quantization-aware and calibrated, the parts TFLite has no int8 kernel for
  left float), or ``None`` (default): kopt for a model with a recurrent loop,
  the converter otherwise. The exported file is the one the search measured:
  with kopt's calibration the stage returns that calibrated model, and the
  file takes its ranges from it alone.

The search keeps its state, models, report and figures in ``<export_dir>/auto``.
Run again with the same recipe after a kill and it resumes there: the stage
keeps the model it was given as ``auto/input.keras`` and searches from that copy,
so a retrained baseline that differs in the last bit does not start it over. The
result exports as a full-integer int8 file. :attr:`Auto.report_entry` holds the
search's report (``pareto``, ``best``, ``message``...) after ``apply``.
"""

import dataclasses
import os
from typing import ClassVar

from absl import logging

from kopt import auto
from kopt.auto.measure import calibrated_int8_model
from kopt.errors import ConfigError
from kopt.pipeline.settings import UNLESS_NONE
from kopt.pipeline.settings import WHEN_GIVEN
from kopt.pipeline.settings import Switch
from kopt.pipeline.settings import setting
from kopt.pipeline.techniques import Technique
from kopt.pipeline.techniques import register_technique
from tflite_export.atomic import atomic_output_path

_CALIBRATION_EXAMPLES = 256  # training images that calibrate the int8 files, as compress's default
_DEFAULT = auto.AUTO_PARAMS  # kopt.auto owns the defaults and the checks (validate_auto_params).


def _auto_setting(key, kind, **options):
    return setting(_DEFAULT[key], kind=kind, checked=False, nullable=_DEFAULT[key] is None, **options)


@dataclasses.dataclass(frozen=True)
class AutoSettings:
    """The ``auto`` params (see the module docstring and :data:`kopt.auto.params.AUTO_PARAMS`)."""

    flag_group: ClassVar[str] = "Accuracy-aware compression"
    switch: ClassVar[Switch] = Switch(
        "auto", "Accuracy-aware compression: the smallest pruned int8 model within --max_accuracy_drop."
    )

    max_accuracy_drop: float = _auto_setting(
        "max_accuracy_drop", float, flag="max_accuracy_drop",
        help="With --auto: validation accuracy points the int8 model may lose against float.",
    )  # fmt: skip
    target_sparsity: float | None = _auto_setting(
        "target_sparsity", float, flag="target_sparsity",
        help="With --auto: stop once the kept model reaches this overall sparsity.",
    )  # fmt: skip
    target_gzip_kb: float | None = _auto_setting(
        "target_gzip_kb", float, flag="target_gzip_kb",
        help="With --auto: stop once the gzipped int8 file fits in this many KiB.",
    )  # fmt: skip
    time_budget: float | None = _auto_setting(
        "time_budget", float, flag="time_budget", help="With --auto: seconds the search may take, over resumptions."
    )
    # The stage's own default (2 epochs per step) unless fine-tuning is set by hand.
    epochs: int = _auto_setting("epochs", int, flag="finetune_epochs", from_flags=WHEN_GIVEN)
    learning_rate: float | None = _auto_setting(
        "learning_rate", float, flag="finetune_learning_rate", from_flags=UNLESS_NONE
    )
    batch_size: int | None = _auto_setting("batch_size", int)
    validation_fraction: float = _auto_setting("validation_fraction", float)
    steps: list | None = _auto_setting("steps", list)
    criterion: str = _auto_setting("criterion", str)
    allocation: str = _auto_setting("allocation", str)
    fragile_drop: float | None = _auto_setting("fragile_drop", float)
    calibration: str | None = _auto_setting(
        "calibration", str, flag="auto_calibration",
        help="With --auto: who calibrates the int8 files, kopt or converter (default: kopt for a model with a "
        "recurrent loop, the converter otherwise).",
    )  # fmt: skip


@register_technique
class Auto(Technique):
    """Finds the smallest pruned int8 model whose validation accuracy stays within budget."""

    name = "auto"
    export_mode = "int8"
    settings = AutoSettings

    def __init__(self):
        self.report_entry = None

    def check(self, params):
        auto.validate_auto_params(params)

    def apply(self, model, context, params):
        values = auto.validate_auto_params(params)
        seed = context.recipe.seed
        images, labels = auto.canonical_order(*auto.as_arrays(context.train, name="train"))
        if getattr(context, "validation", None) is not None:
            fit, val = (images, labels), auto.canonical_order(*auto.as_arrays(context.validation, name="validation"))
        else:
            fit, val = auto.split_validation((images, labels), values["validation_fraction"], seed=seed)
        directory = os.path.join(context.export_dir, "auto")
        model = _input_model(model, directory)
        options = {
            "max_accuracy_drop": values["max_accuracy_drop"],
            "target_sparsity": values["target_sparsity"],
            "target_gzip_kb": values["target_gzip_kb"],
            "time_budget": values["time_budget"],
            "epochs": values["epochs"],
            "batch_size": values["batch_size"] or context.recipe.batch_size,
            "learning_rate": values["learning_rate"] or context.recipe.learning_rate,
            "batch_norm_batches": context.recipe.batch_norm_batches,
            "criterion": values["criterion"],
            "allocation": values["allocation"],
            "seed": seed,
            "output_dir": directory,
            "verbose": 0,
            "calibration_examples": _CALIBRATION_EXAMPLES,
            "int8_calibration": values["calibration"],
        }
        for key in ("steps", "fragile_drop"):
            if values[key] is not None:
                options[key] = list(values[key]) if key == "steps" else values[key]
        try:
            result = auto.compress(model, fit, val, **options)
        except ValueError as err:
            raise _config_error(err, directory, values) from err
        self.report_entry = result.to_dict()
        log = logging.info if result.met_budget else logging.warning
        log(
            "kopt.auto: %s; kept step %d (sparsity %.3f, %d bytes gzipped int8).",
            result.message,
            result.best["step"],
            result.best["sparsity"],
            result.best["gzip_bytes"],
        )
        if result.int8_calibration == "kopt":
            # The file the search measured: the same calibration on the same first training images.
            return calibrated_int8_model(result.model, fit[0][:_CALIBRATION_EXAMPLES])
        return result.model

    def export_options(self, params):
        options = {"mode": self.export_mode}
        if params.get("calibration") == "kopt":
            # The calibrated model holds every range; the converter must not calibrate its float parts.
            # (Left to None, kopt is chosen for a recurrent loop, which the driver already exports so.)
            options["representative_dataset"] = None
        return options


def _input_model(model, directory):
    """The model the search started from, kept beside its state for resuming."""
    import keras

    path = os.path.join(directory, "input.keras")
    if os.path.isfile(path) and os.path.isfile(os.path.join(directory, "state.json")):
        logging.info("kopt.auto: resuming the search in %s from its saved input model.", directory)
        return keras.models.load_model(path, compile=False)
    os.makedirs(directory, exist_ok=True)
    with atomic_output_path(path) as tmp:
        model.save(tmp)
    return model


def _config_error(err, directory, values):
    text = str(err)
    if "time_budget" in text:
        return ConfigError("auto.time_budget", values["time_budget"], text)
    if "output_dir" in text:
        return ConfigError("export_dir", os.path.dirname(directory), text)
    return ConfigError("auto", values, text)
