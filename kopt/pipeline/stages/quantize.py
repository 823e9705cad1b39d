"""The ``qat`` and ``ptq`` stages: quantization with and without retraining.

``qat`` params (recipe keys under ``qat``; flags ``--qat``, ``--qat_scheme``,
``--quantized_io``, ``--finetune_epochs``, ``--finetune_learning_rate``):

* ``scheme``: ``"8bit"`` (default; TFLite int8), ``"16x8"`` (int16 activations)
  or ``"4bit"`` (experimental 4-bit weights, 8-bit activations).
* ``io_type``: ``"float32"`` (default), ``"int8"`` or ``"uint8"`` model inputs and
  outputs in the file (``"16x8"`` keeps float32).
* ``epochs``, ``learning_rate`` and the other training keys of
  :mod:`kopt.pipeline.stages.fine_tune`: quantization-aware fine-tuning of the
  trained float model; the rate defaults to a tenth of the float one, since QAT
  only adapts weights to the rounding. QAT always trains in float32: under a
  mixed-precision recipe the model is copied to float32 first.
* ``preserve``: what earlier stages made that QAT must keep, a subset of
  ``["sparsity", "clusters"]``; only with ``"8bit"``. It picks a collaborative
  scheme (PQAT, CQAT or PCQAT), so the int8 file keeps the zeros and the
  clustered values. ``kopt-optimize`` sets it when ``--prune`` and/or
  ``--cluster`` come before ``--qat``; ``cluster_per_channel`` says the clusters
  are per output channel.

``ptq`` params (flags ``--ptq``, ``--quantized_io``):

* ``mode``: ``"int8"`` (full integer, calibrated on up to 256 training
  examples), ``"int16x8"``, ``"float16"`` or ``"dynamic"``.
* ``io_type``: as for ``qat``; only with ``"int8"``.
"""

from absl import logging

from kopt import pruning
from kopt import quantization
from kopt.errors import ConfigError
from kopt.pipeline.stages.fine_tune import FineTuningTechnique
from kopt.pipeline.stages.fine_tune import check_fine_tune
from kopt.pipeline.stages.fine_tune import steps_per_epoch
from kopt.pipeline.techniques import Technique
from kopt.pipeline.techniques import register_technique
from kopt.pipeline.training import train_classifier
from kopt.training import precision_policy
from kopt.training import to_float32

QAT_SCHEMES = ("8bit", "16x8", "4bit")
PRESERVABLE = ("sparsity", "clusters")
PTQ_MODES = ("int8", "int16x8", "float16", "dynamic")
IO_TYPES = ("float32", "int8", "uint8")
# QAT fine-tunes a trained model: a tenth of the float rate unless one is given.
_QAT_RATE_FACTOR = 0.1


def _check_io_type(technique, io_type, mode):
    if io_type not in IO_TYPES:
        raise ConfigError(f"{technique}.io_type", io_type, f"must be one of {', '.join(IO_TYPES)}")
    if io_type != "float32" and mode != "int8":
        raise ConfigError(f"{technique}.io_type", io_type, f"integer inputs/outputs need int8 quantization, not {mode}")


@register_technique
class QuantizationAwareTraining(FineTuningTechnique):
    """Quantizes every supported layer, fine-tunes with fake quantization, exports integer."""

    name = "qat"
    export_mode = "int8"
    own_param_keys = ("scheme", "io_type", "preserve", "cluster_per_channel")
    rate_factor = _QAT_RATE_FACTOR

    def check(self, params):
        check_fine_tune(self.name, params)
        scheme = params.get("scheme", "8bit")
        if scheme not in QAT_SCHEMES:
            raise ConfigError("qat.scheme", scheme, f"must be one of {', '.join(QAT_SCHEMES)}")
        _check_io_type(self.name, params.get("io_type", "float32"), quantization.schemes.get(scheme).export_mode)
        preserve = params.get("preserve", [])
        if not isinstance(preserve, (list, tuple)) or not set(preserve) <= set(PRESERVABLE):
            raise ConfigError("qat.preserve", preserve, f"must be a list drawn from {', '.join(PRESERVABLE)}")
        if preserve and scheme != "8bit":
            raise ConfigError("qat.scheme", scheme, f"keeping {' and '.join(preserve)} through QAT needs the 8bit scheme")

    def apply(self, model, context, params):
        config = self.training_config(context.recipe, params)
        _log_empty_channels(model)
        # Integer grids need float32: under mixed precision QAT trains a float32 copy.
        with precision_policy("none"):
            try:
                quantized = quantization.quantize_model(to_float32(model), scheme=_qat_scheme(params))
            except ValueError as err:  # A layer the scheme cannot quantize.
                raise ConfigError("qat.scheme", params.get("scheme", "8bit"), str(err)) from err
            train_classifier(
                quantized,
                context.train,
                config=config,
                validation=context.validation,
                steps_per_epoch=steps_per_epoch(context),
            )
        return quantized

    def export_options(self, params):
        io_type = params.get("io_type", "float32")
        mode = quantization.schemes.get(params.get("scheme", "8bit")).export_mode
        return {"mode": mode, "inference_input_type": io_type, "inference_output_type": io_type}


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
    preserve = params.get("preserve", [])
    if "clusters" in preserve:
        return quantization.schemes.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity="sparsity" in preserve, cluster_per_channel=params.get("cluster_per_channel", False)
        )
    if "sparsity" in preserve:
        return quantization.schemes.Default8BitPrunePreserveQuantizeScheme()
    return params.get("scheme", "8bit")


@register_technique
class PostTrainingQuantization(Technique):
    """Leaves the model as trained; the export quantizes it."""

    name = "ptq"
    param_keys = ("mode", "io_type")

    def check(self, params):
        mode = params.get("mode")
        if mode not in PTQ_MODES:
            raise ConfigError("ptq.mode", mode, f"must be one of {', '.join(PTQ_MODES)}")
        _check_io_type(self.name, params.get("io_type", "float32"), mode)

    def apply(self, model, context, params):
        return model

    def export_options(self, params):
        io_type = params.get("io_type", "float32")
        return {"mode": params["mode"], "inference_input_type": io_type, "inference_output_type": io_type}
