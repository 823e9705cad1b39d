"""kopt.quantization: quantization-aware training and post-training quantization.

QAT that exports to fully integer TFLite files, with tfmot's names so code ports
by changing imports:

>>> import keras
>>> from kopt.quantization import quantize_model
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
>>> qat_model = quantize_model(model)

Fine-tune ``qat_model`` with ``fit``, then ``tflite_export.convert(qat_model,
"model.tflite", mode="int8")``. For users who cannot retrain, the ``quantize_*``
post-training helpers write dynamic-range, float16, full-integer or 16x8 files.
``plan_float_prefix`` times int8 files with the front of the network left in float
on this machine and returns the layers that make the file fastest
(``quantize_model(..., float_layers=plan["float_layers"])``).
"""

from kopt.quantization.annotate import QuantizeAnnotate
from kopt.quantization.api import quantize_annotate_layer
from kopt.quantization.api import quantize_annotate_model
from kopt.quantization.api import quantize_apply
from kopt.quantization.api import quantize_model
from kopt.quantization.api import quantize_scope
from kopt.quantization.fake_quant import fake_quant
from kopt.quantization.fake_quant import tflite_lowering
from kopt.quantization.float_layers import float_group
from kopt.quantization.float_prefix import plan_float_prefix
from kopt.quantization.float_prefix import prefix_cuts
from kopt.quantization.low_bit_quantizers import BinaryWeightQuantizer
from kopt.quantization.low_bit_quantizers import TernaryWeightQuantizer
from kopt.quantization.low_bit_schemes import BinaryQuantizeScheme
from kopt.quantization.low_bit_schemes import TernaryQuantizeScheme
from kopt.quantization.packed_size import packed_size
from kopt.quantization.ptq import calibrate
from kopt.quantization.ptq import quantize_calibrated
from kopt.quantization.ptq import quantize_dynamic_range
from kopt.quantization.ptq import quantize_float16
from kopt.quantization.ptq import quantize_full_integer
from kopt.quantization.ptq import quantize_int16x8
from kopt.quantization.quantize_config import DefaultQuantizeConfig
from kopt.quantization.quantize_config import NoOpQuantizeConfig
from kopt.quantization.quantize_config import QuantizeConfig
from kopt.quantization.quantizers import AllValuesQuantizer
from kopt.quantization.quantizers import FixedRangeQuantizer
from kopt.quantization.quantizers import LastValueQuantizer
from kopt.quantization.quantizers import MovingAverageQuantizer
from kopt.quantization.quantizers import Quantizer
from kopt.quantization.schemes import Default8BitClusterPreserveQuantizeScheme
from kopt.quantization.schemes import Default8BitPrunePreserveQuantizeScheme
from kopt.quantization.schemes import Default8BitQuantizeScheme
from kopt.quantization.schemes import Default16x8QuantizeScheme
from kopt.quantization.schemes import DefaultNBitQuantizeScheme
from kopt.quantization.schemes import QuantizeScheme
from kopt.quantization.strip import strip_quantization
from kopt.quantization.wrapper import QuantizeLayer
from kopt.quantization.wrapper import QuantizeWrapper

__all__ = [
    "AllValuesQuantizer",
    "BinaryQuantizeScheme",
    "BinaryWeightQuantizer",
    "Default16x8QuantizeScheme",
    "Default8BitClusterPreserveQuantizeScheme",
    "Default8BitPrunePreserveQuantizeScheme",
    "Default8BitQuantizeScheme",
    "DefaultNBitQuantizeScheme",
    "DefaultQuantizeConfig",
    "FixedRangeQuantizer",
    "LastValueQuantizer",
    "MovingAverageQuantizer",
    "NoOpQuantizeConfig",
    "QuantizeAnnotate",
    "QuantizeConfig",
    "QuantizeLayer",
    "QuantizeScheme",
    "QuantizeWrapper",
    "Quantizer",
    "TernaryQuantizeScheme",
    "TernaryWeightQuantizer",
    "calibrate",
    "fake_quant",
    "float_group",
    "packed_size",
    "plan_float_prefix",
    "prefix_cuts",
    "quantize_annotate_layer",
    "quantize_annotate_model",
    "quantize_apply",
    "quantize_calibrated",
    "quantize_dynamic_range",
    "quantize_float16",
    "quantize_full_integer",
    "quantize_int16x8",
    "quantize_model",
    "quantize_scope",
    "strip_quantization",
    "tflite_lowering",
]

# Last: with this package complete, Keras can load models that use any of kopt's packages.
from kopt import registration as _registration  # noqa: E402

_registration.package_loaded(__name__)
