"""Graph transforms before quantization: BatchNormalization folding and ReLU fusion.

TFLite has no int8 BatchNormalization after a convolution: the converter folds it
into the convolution's weights, and then quantizes the *folded* weights. Training
ranges on the unfolded weights would teach ranges TFLite never uses, so kopt
folds first:

    s = gamma / sqrt(moving_variance + epsilon)
    kernel' = kernel * s            (per output channel)
    bias'   = (bias - moving_mean) * s + beta

and quantization-aware training then trains the folded layer. Batch statistics
are frozen at the moving averages from float training, the usual practice for QAT
fine-tuning (Krishnamoorthi 2018, section 3.2), and the trained model is exactly
the one TFLite runs.

TFLite also fuses ReLU and ReLU6 into the op before them, so that op's output is
never materialized in int8: its range must not be quantized, only the ReLU's.
"""

import dataclasses
import weakref

import keras
import numpy as np

from kopt.quantization.activations import activation_name
from kopt.utils import model_graph

__all__ = [
    "FoldPlan",
    "affine_as_depthwise",
    "fold_batch_norm_weights",
    "fold_source",
    "folded_kernel",
    "folded_layer",
    "is_fusable_relu",
    "plan",
]

L = keras.layers
# Each layer folded_layer made -> (its kernel before the fold, the fold's scale at the kernel's shape).
_FOLD_SOURCES = weakref.WeakKeyDictionary()
_FOLDABLE = (
    L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv1D, L.DepthwiseConv2D, L.Dense, L.Conv1DTranspose, L.Conv2DTranspose,
)  # fmt: skip
# Ops TFLite fuses a following ReLU/ReLU6 into (TRANSPOSE_CONV is left out: the
# converter keeps its ReLU as an op of its own). A BatchNormalization with no
# convolution to fold into is one when quantize_apply runs it as a 1x1 depthwise
# convolution (affine_as_depthwise), as DenseNet's pre-activation ones.
_FUSES_RELU = (
    L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv1D, L.DepthwiseConv2D, L.Dense, L.Add, L.Subtract, L.Multiply,
    L.BatchNormalization,
)  # fmt: skip


@dataclasses.dataclass
class FoldPlan:
    """What the transforms do to one model, by layer name.

    Attributes:
        folds: ``{producer: batch_norm}`` pairs to fold.
        fused: Layers whose output feeds a fused ReLU and gets no range.
    """

    folds: dict
    fused: set

    @property
    def folded_batch_norms(self):
        return set(self.folds.values())


def plan(model, *, fold_batch_norm=True, resolve=None):
    """Finds the BatchNormalization layers to fold and the ReLUs TFLite will fuse.

    Args:
        model: A functional ``keras.Model``.
        fold_batch_norm: Whether to fold at all.
        resolve: Maps a model layer to the layer it stands for (an annotation
            wrapper to the annotated layer); default identity.

    Returns:
        A :class:`FoldPlan`.

    Example:

    >>> import keras
    >>> inputs = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    >>> x = keras.layers.BatchNormalization(name="bn")(x)
    >>> x = keras.layers.ReLU(name="relu")(x)
    >>> result = plan(keras.Model(inputs, x))
    >>> result.folds, sorted(result.fused)
    ({'conv': 'bn'}, ['conv'])
    """
    config = model.get_config()
    readers = model_graph.consumers(model)
    calls = model_graph.inbound_layers(config)
    resolve = resolve or (lambda layer: layer)
    # Readers may also be keras.ops operations (``x + 3.0``), never folded into or fused.
    layers = {layer.name: resolve(layer) for layer in model.layers}
    folds = {}
    if fold_batch_norm:
        for name, layer in layers.items():
            reader = _only_reader(name, readers, calls)
            if reader is not None and _can_fold(layer, layers.get(reader)):
                folds[name] = reader
    fused = set()
    for name, layer in layers.items():
        if not isinstance(layer, _FUSES_RELU) or len(calls.get(name, [])) != 1 or name in folds.values():
            continue
        if isinstance(layer, _FOLDABLE) and activation_name(layer.activation) != "linear":
            continue
        if _read_by_one_relu(folds.get(name, name), readers, calls, layers):
            fused.add(name)
    return FoldPlan(folds=folds, fused=fused)


def _read_by_one_relu(name, readers, calls, layers):
    """Whether every reader of ``name`` is the same fusable ReLU (one, or identical ones the converter merges)."""
    names = readers.get(name, [])
    if not names or model_graph.OUTPUT in names or any(len(calls.get(reader, [])) != 1 for reader in names):
        return False
    relus = [layers.get(reader) for reader in names]
    if not all(is_fusable_relu(relu) for relu in relus):
        return False
    configs = [{key: value for key, value in relu.get_config().items() if key != "name"} for relu in relus]
    return all(type(relu) is type(relus[0]) for relu in relus) and all(c == configs[0] for c in configs)


def fold_batch_norm_weights(kernel, bias, batch_norm_weights, *, epsilon, depthwise=False, transposed=False):
    """Folds BatchNormalization statistics into a kernel and bias (NumPy).

    Args:
        kernel: The producer's kernel, output channels on the last axis (for a
            depthwise kernel ``(h, w, in, multiplier)``, channels ``in * multiplier``).
        bias: Its bias, or ``None``.
        batch_norm_weights: ``{"gamma", "beta", "moving_mean", "moving_variance"}``;
            ``gamma``/``beta`` may be ``None`` (``scale=False``/``center=False``).
        epsilon: The BatchNormalization's epsilon.
        depthwise: Whether ``kernel`` is a depthwise kernel.
        transposed: Whether ``kernel`` is a transposed convolution's
            ``(h, w, out, in)`` kernel, output channels on axis -2.

    Returns:
        ``(folded_kernel, folded_bias)``.

    Example:

    >>> import numpy as np
    >>> kernel, bias = fold_batch_norm_weights(
    ...     np.ones((2, 1)), None, {"gamma": np.array([2.0]), "beta": np.array([1.0]),
    ...     "moving_mean": np.array([0.5]), "moving_variance": np.array([3.0])}, epsilon=1.0)
    >>> kernel.ravel().tolist(), bias.tolist()
    ([1.0, 1.0], [0.5])
    """
    mean = np.asarray(batch_norm_weights["moving_mean"], np.float64)
    variance = np.asarray(batch_norm_weights["moving_variance"], np.float64)
    gamma = batch_norm_weights.get("gamma")
    beta = batch_norm_weights.get("beta")
    gamma = np.ones_like(mean) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros_like(mean) if beta is None else np.asarray(beta, np.float64)
    scale = gamma / np.sqrt(variance + epsilon)
    kernel = np.asarray(kernel, np.float64)
    if depthwise:
        folded_kernel = kernel * scale.reshape(kernel.shape[-2], kernel.shape[-1])
    elif transposed:
        folded_kernel = kernel * scale[:, np.newaxis]
    else:
        folded_kernel = kernel * scale
    bias = np.zeros_like(mean) if bias is None else np.asarray(bias, np.float64)
    folded_bias = (bias - mean) * scale + beta
    return folded_kernel.astype(np.float32), folded_bias.astype(np.float32)


def folded_layer(layer, batch_norm):
    """A new layer computing ``batch_norm(layer(x))`` (inference statistics) in one op."""
    config = layer.get_config()
    config["use_bias"] = True
    folded = type(layer).from_config(config)
    folded.build_from_config(layer.get_build_config())
    bias = layer.bias if layer.use_bias else None
    new_kernel, new_bias = _fold(layer, batch_norm, keras.ops.convert_to_numpy(layer.kernel), bias)
    folded.set_weights([new_kernel, new_bias])
    _FOLD_SOURCES[folded] = (keras.ops.convert_to_numpy(layer.kernel), folded_kernel(layer, batch_norm, unit=True))
    return folded


def folded_kernel(layer, batch_norm, *, unit=False):
    """The kernel :func:`folded_layer` would give ``layer`` (NumPy); with ``unit``, the fold's scale per weight."""
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    return _fold(layer, batch_norm, np.ones_like(kernel) if unit else kernel, None)[0]


def _fold(layer, batch_norm, kernel, bias):
    statistics = {
        "gamma": batch_norm.gamma if batch_norm.scale else None,
        "beta": batch_norm.beta if batch_norm.center else None,
        "moving_mean": batch_norm.moving_mean,
        "moving_variance": batch_norm.moving_variance,
    }
    statistics = {key: None if v is None else keras.ops.convert_to_numpy(v) for key, v in statistics.items()}
    return fold_batch_norm_weights(
        kernel,
        None if bias is None else keras.ops.convert_to_numpy(bias),
        statistics,
        epsilon=batch_norm.epsilon,
        depthwise=isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)),
        transposed=isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose)),
    )


def fold_source(layer):
    """``(kernel, scale)`` of a layer made by :func:`folded_layer`: its kernel is ``kernel * scale``.

    ``kernel`` is the producer's kernel before the fold and ``scale`` the
    BatchNormalization's ``gamma / sqrt(variance + epsilon)`` at the kernel's
    shape. Quantizers that keep a structure of the unfolded kernel (shared
    cluster values) read it when they are built; ``None`` for any other layer,
    and for a folded layer loaded from a file (its quantizers' weights are loaded).
    """
    return _FOLD_SOURCES.get(layer)


def _only_reader(name, readers, calls):
    names = readers.get(name, [])
    if len(names) != 1 or names[0] == model_graph.OUTPUT or len(calls.get(name, [])) != 1:
        return None
    return names[0]


def _can_fold(layer, reader):
    if not isinstance(layer, _FOLDABLE) or not isinstance(reader, L.BatchNormalization):
        return False
    if activation_name(layer.activation) != "linear" or not layer.built:
        return False
    rank = len(layer.get_build_config()["input_shape"])
    axis = reader.axis if isinstance(reader.axis, int) else None
    return axis in (-1, rank - 1) and getattr(layer, "lora_rank", None) is None


def is_fusable_relu(layer):
    """Whether TFLite fuses ``layer`` (a ReLU or ReLU6, nothing else) into the op before it."""
    if isinstance(layer, L.ReLU):
        unbounded_or_six = layer.max_value is None or float(layer.max_value) == 6.0
        return unbounded_or_six and float(layer.negative_slope) == 0.0 and float(layer.threshold) == 0.0
    if isinstance(layer, L.Activation):
        return activation_name(layer.activation) in ("relu", "relu6")
    return False


def affine_as_depthwise(layer):
    """A 1x1 DepthwiseConv2D computing a per-channel affine layer, or ``None``.

    Rescaling, Normalization, a BatchNormalization that has no convolution to
    fold into, and ConvNeXt's LayerScale compute ``x * scale + offset`` per channel. Run as they are, they
    become two TFLite ops (MUL then ADD, or SUB then MUL) whose intermediate tensor
    has no trained range, so the file computes them in float. As one 1x1
    depthwise convolution (kernel ``scale``, bias ``offset``) they become a single
    int8 DEPTHWISE_CONV_2D with per-channel weights, computing the same function.
    Only 4-D channels-last inputs with a known channel count are rewritten.

    Example:

    >>> import keras, numpy as np
    >>> rescaling = keras.layers.Rescaling(1 / 127.5, offset=-1.0)
    >>> rescaling.build((None, 4, 4, 3))
    >>> depthwise = affine_as_depthwise(rescaling)
    >>> x = np.full((1, 4, 4, 3), 255.0, "float32")
    >>> float(np.asarray(depthwise(x))[0, 0, 0, 0])
    1.0
    """
    if not isinstance(layer, (L.Rescaling, L.Normalization, L.BatchNormalization)) and not _is_layer_scale(layer):
        return None
    shape = _built_input_shape(layer)
    # One 4-D input with a known channel count (a merge layer's build shape is a list of shapes).
    if shape is None or len(shape) != 4 or not all(d is None or isinstance(d, int) for d in shape):
        return None
    if shape[-1] is None:
        return None
    channels = int(shape[-1])
    affine = _per_channel_affine(layer, channels)
    if affine is None:
        return None
    scale, offset = affine
    depthwise = L.DepthwiseConv2D(1, use_bias=True, name=layer.name, dtype=layer.dtype_policy.name)
    depthwise.build(tuple(shape))
    depthwise.set_weights([scale.reshape(1, 1, channels, 1).astype(np.float32), offset.astype(np.float32)])
    return depthwise


def _is_layer_scale(layer):
    # keras.applications.convnext.LayerScale is not exported; it multiplies the
    # channels by its one weight, `gamma`.
    return type(layer).__name__ == "LayerScale" and len(layer.weights) == 1 and hasattr(layer, "gamma")


def _built_input_shape(layer):
    try:
        return tuple(layer.get_build_config()["input_shape"])
    except (TypeError, KeyError, AttributeError):
        return None


def _per_channel_affine(layer, channels):
    def per_channel(value):
        value = np.asarray(keras.ops.convert_to_numpy(value), np.float64).reshape(-1)
        if value.size not in (1, channels):
            return None
        return np.broadcast_to(value, (channels,)).copy()

    if isinstance(layer, L.Rescaling):
        scale, offset = per_channel(layer.scale), per_channel(layer.offset)
    elif isinstance(layer, L.Normalization):
        if getattr(layer, "invert", False) or tuple(layer.axis) not in ((-1,), (3,)):
            return None
        mean, variance = per_channel(layer.mean), per_channel(layer.variance)
        if mean is None or variance is None:
            return None
        scale = 1.0 / np.maximum(np.sqrt(variance), keras.config.epsilon())
        offset = -mean * scale
    elif isinstance(layer, L.BatchNormalization):
        if layer.axis not in (-1, 3):
            return None
        mean = per_channel(layer.moving_mean)
        variance = per_channel(layer.moving_variance)
        gamma = per_channel(layer.gamma) if layer.scale else np.ones(channels)
        beta = per_channel(layer.beta) if layer.center else np.zeros(channels)
        scale = gamma / np.sqrt(variance + layer.epsilon)
        offset = beta - mean * scale
    elif _is_layer_scale(layer):
        scale = per_channel(layer.gamma)
        if scale is None:
            return None
        offset = np.zeros(channels)
    else:
        return None
    if scale is None or offset is None:
        return None
    return scale, offset
