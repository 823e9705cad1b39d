"""The ``qat`` and ``ptq`` stages: quantization with and without retraining.

``qat`` params (recipe keys under ``qat``; flags ``--qat``, ``--qat_scheme``,
``--quantized_io``, ``--finetune_epochs``, ``--finetune_learning_rate``):

* ``scheme``: ``"8bit"`` (default; TFLite int8), ``"16x8"`` (int16 activations),
  ``"4bit"`` (experimental 4-bit weights, 8-bit activations), ``"binary"`` or
  ``"ternary"`` (1-bit or ternary weights with a per-channel scale, 8-bit
  activations, stored as int8 with two or three values per channel; see
  :mod:`kopt.quantization.low_bit_schemes`).
* ``first_and_last_8bit``: with ``"binary"`` or ``"ternary"``, keep the first and
  last layer with a kernel at 8 bits (default ``True``; flag
  ``--qat_first_and_last_8bit``).
* ``float_layers``: names of layers left in float (flag ``--qat_float_layers``,
  comma-separated; :mod:`kopt.quantization.float_layers`); default none: a fully
  integer file.
* ``float_prefix``: time int8 files with float prefixes of several lengths on
  this machine and leave the fastest prefix in float
  (:func:`kopt.quantization.plan_float_prefix`; flag ``--qat_float_prefix``).
  Default ``False``: a fully integer file, which microcontrollers and NPUs need.
* ``io_type``: ``"float32"`` (default), ``"int8"`` or ``"uint8"`` model inputs and
  outputs in the file (``"16x8"`` keeps float32).
* ``epochs``, ``learning_rate`` and the other training keys of
  :mod:`kopt.pipeline.stages.fine_tune`: quantization-aware fine-tuning of the
  trained float model; the rate defaults to a tenth of the float one, since QAT
  only adapts weights to the rounding. QAT always trains in float32: under a
  mixed-precision recipe the model is copied to float32 first.
* ``preserve``: what earlier stages made that QAT must keep, a subset of
  ``["sparsity", "clusters"]``; only with ``"8bit"``, or ``["sparsity"]`` with
  ``"ternary"``. It picks a collaborative scheme (PQAT, CQAT or PCQAT; ternary
  weights that keep the zeros), so the int8 file keeps the zeros and the
  clustered values. ``kopt-optimize`` sets it when ``--prune`` and/or
  ``--cluster`` come before ``--qat``; ``cluster_per_channel`` says the clusters
  are per output channel.

``ptq`` params (flags ``--ptq``, ``--ptq_calibration``, ``--ptq_float_layers``,
``--quantized_io``):

* ``mode``: ``"int8"`` (full integer), ``"int16x8"``, ``"float16"`` or
  ``"dynamic"``.
* ``calibration``: who chooses the activation ranges of an integer mode, from up
  to 256 training examples. ``"kopt"`` (the default for ``"int8"``): the model is
  made quantization-aware as for QAT and its ranges are calibrated without
  training (:func:`kopt.quantization.calibrate`); the file then quantizes exactly
  what a QAT file would and keeps float, on purpose, the parts TFLite has no
  matching int8 kernel for (layer normalization after its mean, attention scores,
  a recurrent loop), which keeps transformer and LSTM files within 1% of the float
  model. The stage's model is then that calibrated model. ``"converter"`` (the
  only choice for ``"int16x8"``): the TFLite converter calibrates the float model
  itself; needed for layers ``quantize_model`` does not know.
* ``float_layers``: as for ``qat`` (flag ``--ptq_float_layers``); only with
  kopt's calibration, since the converter would quantize the layers again.
* ``io_type``: as for ``qat``; only with ``"int8"``.
"""

import dataclasses
from typing import ClassVar

from absl import logging

from kopt import pruning
from kopt import quantization
from kopt.errors import ConfigError
from kopt.pipeline.classifier_training import train_classifier
from kopt.pipeline.settings import NEVER
from kopt.pipeline.settings import UNLESS_NONE
from kopt.pipeline.settings import WHEN_GIVEN
from kopt.pipeline.settings import Switch
from kopt.pipeline.settings import parse_names
from kopt.pipeline.settings import setting
from kopt.pipeline.stages.fine_tune import FineTuneSettings
from kopt.pipeline.stages.fine_tune import FineTuningTechnique
from kopt.pipeline.stages.fine_tune import steps_per_epoch
from kopt.pipeline.techniques import Technique
from kopt.pipeline.techniques import register_technique
from kopt.training import precision_policy
from kopt.training import to_float32
from tflite_export.calibration import REPRESENTATIVE_EXAMPLES

QAT_SCHEMES = ("8bit", "16x8", "4bit", "binary", "ternary")
LOW_BIT_SCHEMES = ("binary", "ternary")
PRESERVABLE = ("sparsity", "clusters")
PTQ_MODES = ("int8", "int16x8", "float16", "dynamic")
PTQ_CALIBRATIONS = ("kopt", "converter")
IO_TYPES = ("float32", "int8", "uint8")
# QAT fine-tunes a trained model: a tenth of the float rate unless one is given.
_QAT_RATE_FACTOR = 0.1
_QUANTIZATION = "Quantization"


def _check_float_layers(technique, model, names):
    if names:
        try:
            quantization.float_group(model, list(names))
        except ValueError as err:
            raise ConfigError(f"{technique}.float_layers", list(names), str(err)) from err


def _check_io_type(technique, io_type, mode):
    if io_type != "float32" and mode != "int8":
        raise ConfigError(f"{technique}.io_type", io_type, f"integer inputs/outputs need int8 quantization, not {mode}")


@dataclasses.dataclass(frozen=True)
class QatSettings(FineTuneSettings):
    """The ``qat`` params (see the module docstring)."""

    flag_group: ClassVar[str] = _QUANTIZATION
    switch: ClassVar[Switch] = Switch("qat", "Quantization-aware training, then a fully integer TFLite export.")

    scheme: str = setting(
        "8bit", kind=str, choices=QAT_SCHEMES, flag="qat_scheme",
        help="QAT scheme: TFLite int8, int16 activations, 4-bit weights, or binary or ternary weights.",
    )  # fmt: skip
    first_and_last_8bit: bool = setting(
        True, kind=bool, flag="qat_first_and_last_8bit", from_flags=WHEN_GIVEN,
        help="With --qat_scheme=binary or ternary: keep the first and last layer with a kernel at 8 bits.",
    )  # fmt: skip
    io_type: str = setting("float32", kind=str, choices=IO_TYPES, flag="quantized_io")
    float_layers: list = setting(
        [], kind=list, flag="qat_float_layers", flag_default=None, from_flags=UNLESS_NONE, parse=parse_names,
        help="Comma-separated layer names QAT leaves in float (with their folded BatchNormalization and fused ReLU); "
        "the file is then not fully integer. On x86 XNNPACK the first convolution of an image model runs faster in "
        "float.",
    )  # fmt: skip
    float_prefix: bool = setting(
        False, kind=bool, flag="qat_float_prefix", from_flags=WHEN_GIVEN,
        help="Time int8 files with the front of the network left in float, on this machine, and keep the fastest "
        "(kopt.quantization.plan_float_prefix): int8 files faster than float on x86 XNNPACK. Not for "
        "microcontrollers or NPUs, which need a fully integer file.",
    )  # fmt: skip
    preserve: list = setting([], kind=list, checked=False)
    # Over a recipe file --cluster_per_channel sets it; from flags alone it follows the cluster stage.
    cluster_per_channel: bool = setting(False, kind=bool, flag="cluster_per_channel", from_flags=NEVER)


@register_technique
class QuantizationAwareTraining(FineTuningTechnique):
    """Quantizes every supported layer, fine-tunes with fake quantization, exports integer."""

    name = "qat"
    export_mode = "int8"
    settings = QatSettings
    rate_factor = _QAT_RATE_FACTOR

    def __init__(self):
        # With float_prefix: {"float_prefix": the plan}, the report's "qat" entry (every candidate timed).
        self.report_entry = None

    def check(self, params):
        super().check(params)
        values = self.values(params)
        _check_io_type(self.name, values.io_type, quantization.schemes.get(values.scheme).export_mode)
        if values.float_prefix and quantization.schemes.get(values.scheme).export_mode != "int8":
            raise ConfigError(
                "qat.float_prefix",
                values.float_prefix,
                f"a measured float prefix needs an int8 scheme, not {values.scheme}",
            )
        if values.float_prefix and (values.float_layers or values.io_type != "float32"):
            raise ConfigError(
                "qat.float_prefix",
                values.float_prefix,
                "a measured float prefix chooses the float layers itself and needs float32 inputs and outputs; "
                f"received float_layers={list(values.float_layers)}, io_type={values.io_type!r}",
            )
        preserve = values.preserve
        if not isinstance(preserve, (list, tuple)) or not set(preserve) <= set(PRESERVABLE):
            raise ConfigError("qat.preserve", preserve, f"must be a list drawn from {', '.join(PRESERVABLE)}")
        if preserve and values.scheme != "8bit" and not (values.scheme == "ternary" and list(preserve) == ["sparsity"]):
            raise ConfigError(
                "qat.scheme",
                values.scheme,
                f"keeping {' and '.join(preserve)} through QAT needs the 8bit scheme (ternary keeps sparsity only)",
            )

    def check_model(self, model, params):
        _check_float_layers(self.name, model, self.values(params).float_layers)

    def with_earlier_stages(self, params, earlier):
        # QAT after pruning or clustering keeps their zeros and shared values.
        names = {spec.name: spec.params for spec in earlier}
        preserve = [kind for kind, stage in (("sparsity", "prune"), ("clusters", "cluster")) if stage in names]
        scheme = self.values(params).scheme
        if preserve and scheme == "8bit":
            per_channel = names.get("cluster", {}).get("cluster_per_channel", False)
            return {**params, "preserve": preserve, "cluster_per_channel": per_channel}
        if "sparsity" in preserve and scheme == "ternary":
            if "clusters" in preserve:
                logging.warning("--qat_scheme=ternary keeps the zeros but not the shared values of clustering.")
            return {**params, "preserve": ["sparsity"]}
        if preserve:
            logging.warning(
                "--qat_scheme=%s cannot keep %s through QAT (only 8bit can, and ternary the zeros); the zeros "
                "and shared values may change during fine-tuning.",
                scheme,
                " and ".join(preserve),
            )
            return {**params, "preserve": []}
        return params

    def apply(self, model, context, params):
        config = self.training_config(context.recipe, params)
        _log_empty_channels(model)
        self.check_model(model, params)  # after a stage that replaced the model, first checked here
        # Integer grids need float32: under mixed precision QAT trains a float32 copy.
        with precision_policy("none"):
            float_model = to_float32(model)
            float_layers = list(self.values(params).float_layers)
            self.report_entry = None
            if self.values(params).float_prefix:
                plan = _planned_float_prefix(float_model, context.train, _qat_scheme(params))
                float_layers = plan["float_layers"]
                self.report_entry = {"float_prefix": plan}
            try:
                quantized = quantization.quantize_model(
                    float_model, scheme=_qat_scheme(params), float_layers=float_layers
                )
            except ValueError as err:  # A layer the scheme cannot quantize.
                raise ConfigError("qat.scheme", self.values(params).scheme, str(err)) from err
            train_classifier(
                quantized,
                context.train,
                config=config,
                validation=context.validation,
                steps_per_epoch=steps_per_epoch(context),
            )
        return quantized

    def export_options(self, params):
        values = self.values(params)
        mode = quantization.schemes.get(values.scheme).export_mode
        options = {"mode": mode, "inference_input_type": values.io_type, "inference_output_type": values.io_type}
        if values.float_layers or values.float_prefix:
            # The converter would calibrate the layers left in float and make them int8 after all.
            options["representative_dataset"] = None
        return options


def _planned_float_prefix(model, train, scheme):
    plan = quantization.plan_float_prefix(model, train, scheme=scheme)
    logging.info(
        "Float prefix: %s (%d layers, %.1f%% of the weights) in float: %.4f ms against %.4f ms fully integer and "
        "%.4f ms float32 on this machine (LiteRT, XNNPACK, 1 thread).",
        plan["cut"] or "none",
        len(plan["float_layers"]),
        100 * plan["float_share"],
        plan["ms"],
        plan["int8_ms"],
        plan["float_ms"],
    )
    return plan


def _log_empty_channels(model):
    found = pruning.empty_channels(model)
    if found["empty"]:
        layers = ", ".join(f"{entry['layer']} ({entry['empty']}/{entry['channels']})" for entry in found["layers"])
        logging.info(
            "%d of %d output channels hold only zeros: %s. They quantize exactly (each takes its layer's "
            "widest scale); structured pruning (--prune_structured) can remove them.",
            found["empty"],
            found["channels"],
            layers,
        )


def _qat_scheme(params):
    # Collaborative schemes take the zeros and values of the stripped model as given.
    values = QuantizationAwareTraining().values(params)
    if values.scheme in LOW_BIT_SCHEMES:
        options = {"first_and_last_8bit": values.first_and_last_8bit}
        if values.scheme == "ternary":
            return quantization.TernaryQuantizeScheme(preserve_sparsity="sparsity" in values.preserve, **options)
        return quantization.BinaryQuantizeScheme(**options)
    if "clusters" in values.preserve:
        return quantization.schemes.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity="sparsity" in values.preserve, cluster_per_channel=values.cluster_per_channel
        )
    if "sparsity" in values.preserve:
        return quantization.schemes.Default8BitPrunePreserveQuantizeScheme()
    return values.scheme


@dataclasses.dataclass(frozen=True)
class PtqSettings:
    """The ``ptq`` params (see the module docstring)."""

    flag_group: ClassVar[str] = _QUANTIZATION

    mode: str = setting(
        None, kind=str, choices=PTQ_MODES, flag="ptq", adds_stage=True,
        help="Post-training quantization of the export (no retraining).",
    )  # fmt: skip
    calibration: str | None = setting(
        None, kind=str, choices=PTQ_CALIBRATIONS, checked=False, flag="ptq_calibration", from_flags=UNLESS_NONE,
        help="Who calibrates an integer --ptq: kopt (default for int8: QAT's graph with calibrated ranges, no "
        "training) or the TFLite converter (the only choice for int16x8; for layers kopt cannot quantize).",
    )  # fmt: skip
    float_layers: list = setting(
        [], kind=list, flag="ptq_float_layers", flag_default=None, from_flags=UNLESS_NONE, parse=parse_names,
        help="Comma-separated layer names an int8 --ptq leaves in float, as --qat_float_layers does (kopt's "
        "calibration only).",
    )  # fmt: skip
    io_type: str = setting(
        "float32", kind=str, choices=IO_TYPES, flag="quantized_io",
        help="Input/output type of an int8 --qat or --ptq file.",
    )  # fmt: skip


@register_technique
class PostTrainingQuantization(Technique):
    """Quantizes without retraining: kopt calibrates a quantization-aware copy, or the export does."""

    name = "ptq"
    settings = PtqSettings

    def check(self, params):
        super().check(params)
        mode = params.get("mode")
        values = self.values(params)
        _check_io_type(self.name, values.io_type, mode)
        if values.float_layers and ptq_calibration(params) != "kopt":
            raise ConfigError(
                "ptq.float_layers",
                list(values.float_layers),
                f"layers are left in float by kopt's int8 calibration only, not with mode={mode!r} and "
                f"calibration={ptq_calibration(params)!r}: the converter would quantize them again",
            )
        if "calibration" not in params:
            return
        calibration = params["calibration"]
        if calibration not in PTQ_CALIBRATIONS:
            raise ConfigError("ptq.calibration", calibration, f"must be one of {', '.join(PTQ_CALIBRATIONS)}")
        if mode in ("float16", "dynamic"):
            raise ConfigError(
                "ptq.calibration", calibration, f"only integer modes calibrate; mode {mode} needs no data"
            )
        if mode == "int16x8" and calibration == "kopt":
            raise ConfigError(
                "ptq.calibration", calibration, "kopt calibrates int8 only; int16x8 is calibrated by the converter"
            )

    def check_model(self, model, params):
        _check_float_layers(self.name, model, self.values(params).float_layers)

    def apply(self, model, context, params):
        if ptq_calibration(params) != "kopt":
            return model
        self.check_model(model, params)  # after a stage that replaced the model, first checked here
        # Integer grids need float32, as for QAT.
        with precision_policy("none"):
            try:
                float_layers = list(self.values(params).float_layers)
                quantized = quantization.quantize_model(to_float32(model), float_layers=float_layers)
            except ValueError as err:  # A layer kopt cannot quantize; the converter may.
                raise ConfigError(
                    "ptq.calibration",
                    "kopt",
                    f"{err} Set ptq.calibration to converter (--ptq_calibration=converter) to let the TFLite "
                    "converter calibrate the float model instead",
                ) from err
            # As many examples as the converter calibrates on, so both calibrations see the same data.
            quantization.calibrate(quantized, context.train, max_examples=REPRESENTATIVE_EXAMPLES)
        logging.info(
            "Calibrated the activation ranges of %s on up to %d training examples.", model.name, REPRESENTATIVE_EXAMPLES
        )
        return quantized

    def export_options(self, params):
        values = self.values(params)
        options = {"mode": values.mode, "inference_input_type": values.io_type, "inference_output_type": values.io_type}
        if values.float_layers:
            options["representative_dataset"] = None  # the converter would make the float layers int8
        return options


def ptq_calibration(params):
    """Who calibrates a ``ptq`` stage: ``"kopt"``, ``"converter"`` or ``None`` (a mode without data).

    Example:

    >>> ptq_calibration({"mode": "int8"}), ptq_calibration({"mode": "int8", "calibration": "converter"})
    ('kopt', 'converter')
    >>> ptq_calibration({"mode": "int16x8"}), ptq_calibration({"mode": "dynamic"})
    ('converter', None)
    """
    mode = params["mode"]
    if mode in ("float16", "dynamic"):
        return None
    return params.get("calibration", "kopt" if mode == "int8" else "converter")
