"""tensorflow-model-optimization's namespace, backed by kopt: port a tfmot script by its import line.

Replace ``import tensorflow_model_optimization as tfmot`` with
``import kopt.compat.tfmot as tfmot``; ``tfmot.sparsity.keras.prune_low_magnitude``,
``tfmot.quantization.keras.quantize_model``, ``tfmot.clustering.keras.cluster_weights``,
``tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme`` and the rest
are kopt's functions and classes under tfmot's names. Each namespace is also a
module (``from kopt.compat.tfmot.sparsity import keras``). A name tfmot has and
kopt does not raises an ``AttributeError`` that says what to use instead; the
README's migration guide lists them, with the Keras 3 changes a port also needs.

Example:

>>> import kopt.compat.tfmot as tfmot
>>> import keras
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
>>> pruned = tfmot.sparsity.keras.prune_low_magnitude(model, tfmot.sparsity.keras.ConstantSparsity(0.5, 0))
>>> type(pruned.layers[0]).__name__
'PruneLowMagnitude'
"""

import sys
import types

from kopt import clustering as _clustering
from kopt import pruning as _pruning
from kopt import quantization as _quantization
from kopt.quantization import schemes as _schemes

__all__ = ["clustering", "experimental", "quantization", "sparsity"]

# tfmot names kopt leaves out, and what to use instead.
_NOT_PROVIDED = {
    "QuantizeLayoutTransform": "kopt's schemes apply their layout changes (BatchNormalization folding, "
    "activation fusing) inside quantize_apply; subclass kopt.quantization.QuantizeScheme for another scheme",
    "QuantizeRegistry": "pass a QuantizeConfig to quantize_annotate_layer for a layer the default scheme "
    "does not know (kopt.quantization.QuantizeConfig)",
    "QuantizeWrapperV2": "kopt.quantization.QuantizeWrapper (one wrapper class)",
    "fix_input_output_range": "kopt's QAT files keep float32 or take io_type; see tflite_export.convert",
    "graph_transformations": "not public in kopt",
    "Default8BitQuantizeLayoutTransform": "kopt.quantization.Default8BitQuantizeScheme applies it",
    "Default8BitQuantizeRegistry": "kopt.quantization.Default8BitQuantizeScheme holds it",
    "ClusteringAlgorithm": "kopt.clustering.ClusterableLayer for custom layers",
}


class _Namespace(types.ModuleType):
    """A module of tfmot names whose missing ones say what kopt offers instead."""

    def __init__(self, name, doc, **members):
        super().__init__(name, doc)
        self.__dict__.update(members)
        self.__all__ = sorted(key for key in members if not key.startswith("_"))
        sys.modules[name] = self  # importable as well as reachable by attribute

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        instead = _NOT_PROVIDED.get(name)
        hint = f"; {instead}" if instead else ""
        raise AttributeError(f"{self.__name__}.{name} has no kopt counterpart{hint} (README: Migrating from tfmot)")


_NAME = __name__

_sparsity_keras = _Namespace(
    f"{_NAME}.sparsity.keras",
    "tfmot.sparsity.keras: kopt.pruning under tfmot's names.",
    ConstantSparsity=_pruning.ConstantSparsity,
    PolynomialDecay=_pruning.PolynomialDecay,
    PrunableLayer=_pruning.PrunableLayer,
    PruneForLatencyOnXNNPack=_pruning.PruneForLatencyOnXNNPack,
    PruningPolicy=_pruning.PruningPolicy,
    PruningSchedule=_pruning.PruningSchedule,
    PruningSummaries=_pruning.PruningSummaries,
    UpdatePruningStep=_pruning.UpdatePruningStep,
    prune_low_magnitude=_pruning.prune_low_magnitude,
    prune_scope=_pruning.prune_scope,
    strip_pruning=_pruning.strip_pruning,
)
sparsity = _Namespace(f"{_NAME}.sparsity", "tfmot.sparsity", keras=_sparsity_keras)

_quantizers = _Namespace(
    f"{_NAME}.quantization.keras.quantizers",
    "tfmot.quantization.keras.quantizers: kopt's quantizers.",
    AllValuesQuantizer=_quantization.AllValuesQuantizer,
    FixedRangeQuantizer=_quantization.FixedRangeQuantizer,
    LastValueQuantizer=_quantization.LastValueQuantizer,
    MovingAverageQuantizer=_quantization.MovingAverageQuantizer,
    Quantizer=_quantization.Quantizer,
)
_default_8bit = _Namespace(
    f"{_NAME}.quantization.keras.default_8bit",
    "tfmot.quantization.keras.default_8bit: the 8-bit scheme.",
    Default8BitQuantizeScheme=_schemes.Default8BitQuantizeScheme,
)
_default_n_bit = _Namespace(
    f"{_NAME}.quantization.keras.experimental.default_n_bit",
    "tfmot.quantization.keras.experimental.default_n_bit: the n-bit scheme.",
    DefaultNBitQuantizeScheme=_schemes.DefaultNBitQuantizeScheme,
)
_quantization_experimental = _Namespace(
    f"{_NAME}.quantization.keras.experimental", "tfmot.quantization.keras.experimental", default_n_bit=_default_n_bit
)
_quantization_keras = _Namespace(
    f"{_NAME}.quantization.keras",
    "tfmot.quantization.keras: kopt.quantization under tfmot's names.",
    QuantizeConfig=_quantization.QuantizeConfig,
    QuantizeScheme=_quantization.QuantizeScheme,
    QuantizeWrapper=_quantization.QuantizeWrapper,
    default_8bit=_default_8bit,
    experimental=_quantization_experimental,
    quantize_annotate_layer=_quantization.quantize_annotate_layer,
    quantize_annotate_model=_quantization.quantize_annotate_model,
    quantize_apply=_quantization.quantize_apply,
    quantize_model=_quantization.quantize_model,
    quantize_scope=_quantization.quantize_scope,
    quantizers=_quantizers,
)
quantization = _Namespace(f"{_NAME}.quantization", "tfmot.quantization", keras=_quantization_keras)

_clustering_keras = _Namespace(
    f"{_NAME}.clustering.keras",
    "tfmot.clustering.keras: kopt.clustering under tfmot's names.",
    CentroidInitialization=_clustering.CentroidInitialization,
    ClusterableLayer=_clustering.ClusterableLayer,
    ClusteringSummaries=_clustering.ClusteringSummaries,
    cluster_scope=_clustering.cluster_scope,
    cluster_weights=_clustering.cluster_weights,
    strip_clustering=_clustering.strip_clustering,
)
clustering = _Namespace(f"{_NAME}.clustering", "tfmot.clustering", keras=_clustering_keras)

_combine = _Namespace(
    f"{_NAME}.experimental.combine",
    "tfmot.experimental.combine: the collaborative-optimization schemes.",
    Default8BitClusterPreserveQuantizeScheme=_schemes.Default8BitClusterPreserveQuantizeScheme,
    Default8BitPrunePreserveQuantizeScheme=_schemes.Default8BitPrunePreserveQuantizeScheme,
)
experimental = _Namespace(f"{_NAME}.experimental", "tfmot.experimental", combine=_combine)
