"""quantize_model, quantize_annotate_layer/model and quantize_apply (tfmot's names).

``quantize_model(model)`` is ``quantize_apply(quantize_annotate_model(model))``.
``quantize_apply`` rebuilds a Sequential or functional model:

1. BatchNormalization layers that follow a convolution or Dense layer are folded
   into it, and ReLUs TFLite will fuse are noted (:mod:`kopt.quantization.transforms`);
2. every annotated layer is wrapped in a :class:`QuantizeWrapper` with its
   annotation's ``QuantizeConfig`` or the scheme's built-in one; layers that only
   move int8 data (pooling, Flatten...) stay as they are;
3. a :class:`QuantizeLayer` is put wherever a float tensor enters the quantized
   part of the model, such as the model inputs. A SeparableConv2D becomes a
   DepthwiseConv2D and a 1x1 Conv2D first, and a MultiHeadAttention its four
   projections around a float attention core, as the TFLite file runs them
   (:mod:`kopt.quantization.splits`), and nested models are inlined, so folding
   and fusion see across their boundaries. ``keras.ops`` nodes (MobileNetV3's
   ``relu6(x + 3.0) * (1 / 6)``) compute in float, and the quantizer where a
   quantized layer reads them gives the converter their ranges; on the input side
   constant scalings (``preprocess_input``) become one ``Rescaling`` (:mod:`kopt.quantization.input_ops`).

Weights are copied: the returned model shares no variable with its input.
"""

from collections.abc import Sequence
from typing import Any

import keras

from kopt.quantization import registry
from kopt.quantization import scheme_base
from kopt.quantization import schemes as schemes_lib
from kopt.quantization import transforms
from kopt.quantization.annotate import QuantizeAnnotate
from kopt.quantization.annotate import copy_annotation
from kopt.quantization.annotate import require_float32
from kopt.quantization.float_layers import float_units
from kopt.quantization.float_layers import warn_if_requantized
from kopt.quantization.input_ops import FrontOperations
from kopt.quantization.quantize_config import NoOpQuantizeConfig
from kopt.quantization.quantize_config import QuantizeConfig
from kopt.quantization.splits import check_attention_masks
from kopt.quantization.splits import split_annotated
from kopt.quantization.wrapper import QuantizeLayer
from kopt.quantization.wrapper import QuantizeWrapper
from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_unshared
from tflite_export.cloning import inline_nested_models
from tflite_export.cloning import require_graph_model

__all__ = ["quantize_annotate_layer", "quantize_annotate_model", "quantize_apply", "quantize_model", "quantize_scope"]

_ADVICE = (
    "Quantize a Sequential or functional model, or wrap the layers of the subclassed model "
    "with kopt.quantization.QuantizeWrapper(layer, quantize_config) yourself."
)


def quantize_model(
    to_quantize: keras.Model,
    *,
    scheme: schemes_lib.QuantizeScheme | str | None = None,
    float_layers: Sequence[str] = (),
) -> keras.Model:
    """Returns a quantization-aware copy of a model: every supported layer quantized, or all but some.

    Train (fine-tune) the result as usual, then convert it with
    ``tflite_export.convert(model, "model.tflite", mode="int8")``: the file uses the
    trained ranges and needs no representative dataset.

    Args:
        to_quantize: A built Sequential or functional ``keras.Model``.
        scheme: A :class:`QuantizeScheme` or its name (``"8bit"`` default,
            ``"16x8"``, ``"4bit"``, ``"binary"``, ``"ternary"``).
        float_layers: Names of layers to leave in float, each with the
            BatchNormalization folded into it and the ReLU fused into it
            (:mod:`kopt.quantization.float_layers`, which says where the file
            keeps them float); the file is then not fully integer. Default: none.

    Returns:
        A new functional ``keras.Model``; compiled like ``to_quantize`` if it was.

    Raises:
        ValueError: For a subclassed model, layers the scheme does not support
            (all named in one message, with how to give a QuantizeConfig), or a
            name in ``float_layers`` the model has no layer of.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
    ...                           keras.layers.Dense(2)])
    >>> qat = quantize_model(model)
    >>> [type(layer).__name__ for layer in qat.layers]
    ['InputLayer', 'QuantizeLayer', 'QuantizeWrapper', 'QuantizeWrapper']
    """
    if not isinstance(to_quantize, keras.Model):
        raise ValueError(f"quantize_model expects a keras.Model. Received: to_quantize={to_quantize!r}")
    check_attention_masks(to_quantize)
    model = _functional(to_quantize)
    units = float_units(model, float_layers) if float_layers else {}
    return warn_if_requantized(quantize_apply(_annotate(model, set().union(*units.values())), scheme=scheme), units)


def quantize_annotate_layer(
    to_annotate: keras.layers.Layer, quantize_config: QuantizeConfig | dict[str, Any] | None = None
) -> QuantizeAnnotate:
    """Marks one layer to be quantized, optionally with a custom ``QuantizeConfig``.

    Args:
        to_annotate: A Keras layer (not yet built into a model, or being built).
        quantize_config: A :class:`QuantizeConfig`; needed for layers without
            built-in support.

    Returns:
        A :class:`QuantizeAnnotate` wrapping the layer.

    Example:

    >>> import keras
    >>> type(quantize_annotate_layer(keras.layers.Dense(2))).__name__
    'QuantizeAnnotate'
    """
    return QuantizeAnnotate(to_annotate, quantize_config=quantize_config)


def quantize_annotate_model(to_annotate: keras.Model) -> keras.Model:
    """Marks every layer of a model to be quantized (already annotated ones keep theirs).

    Args:
        to_annotate: A Sequential or functional ``keras.Model``.

    Returns:
        A functional copy of the model with each layer in a :class:`QuantizeAnnotate`.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> [type(layer).__name__ for layer in quantize_annotate_model(model).layers]
    ['InputLayer', 'QuantizeAnnotate']
    """
    return _annotate(_functional(to_annotate))


def _annotate(model, leave_float=frozenset()):
    """Annotates every layer of the functional ``model`` but those whose (inner) name is in ``leave_float``."""

    def annotate(layer):
        if _unwrap(layer).name in leave_float:
            return copy_unshared(_unwrap(layer))
        if isinstance(layer, QuantizeAnnotate):
            return copy_annotation(layer)  # kept as annotated, config object and all
        return QuantizeAnnotate(copy_unshared(layer))

    front = FrontOperations(QuantizeAnnotate)  # x / 127.5 on the input: a Rescaling QAT can quantize

    def call(layer, *args, **kwargs):
        if (outputs := front.call(layer, args, kwargs)) is not None:
            return outputs
        # A wrapper takes its layer's keyword arguments as one nested argument, in
        # which Keras refuses tensors beside flags: MultiHeadAttention's
        # attention_mask next to use_causal_mask=False. Off flags are the defaults.
        if any(isinstance(value, keras.KerasTensor) for value in kwargs.values()):
            kwargs = {key: value for key, value in kwargs.items() if value is not None and value is not False}
        return layer(*args, **kwargs)

    return clone_graph_model(model, annotate, action="quantize", advice=_ADVICE, call_function=call)


def quantize_apply(model: keras.Model, scheme: schemes_lib.QuantizeScheme | str | None = None) -> keras.Model:
    """Quantizes the annotated layers of a model (see the module docstring).

    Args:
        model: A Sequential or functional model with :class:`QuantizeAnnotate` layers.
        scheme: A :class:`QuantizeScheme` or its name; default 8-bit.

    Returns:
        A new functional quantization-aware ``keras.Model``.

    Raises:
        ValueError: If nothing is annotated, the model is subclassed,
            annotated layers have no built-in support and no config, or annotated
            layers compute in reduced precision (a ``mixed_float16`` or
            ``mixed_bfloat16`` policy).

    Example:

    >>> import keras
    >>> inputs = keras.Input((4,))
    >>> hidden = quantize_annotate_layer(keras.layers.Dense(3))(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    >>> [type(layer).__name__ for layer in quantize_apply(model).layers]
    ['InputLayer', 'QuantizeLayer', 'QuantizeWrapper', 'Dense']
    """
    scheme = schemes_lib.get(scheme)
    model = _functional(model)
    if not any(isinstance(layer, QuantizeAnnotate) for layer in model.layers):
        raise ValueError(
            f"quantize_apply found no annotated layer in model {model.name!r}. Annotate layers with "
            "quantize_annotate_layer, or call quantize_model(model) to quantize every layer."
        )
    require_float32(model)
    model = split_annotated(model, advice=_ADVICE)
    layers = {layer.name: layer for layer in model.layers}
    fold_plan = transforms.plan(model, fold_batch_norm=scheme.fold_batch_norm, resolve=_unwrap)
    folds = {name: bn for name, bn in fold_plan.folds.items() if _annotated_pair(layers[name], layers[bn])}
    folded = set(folds.values())
    # Per-channel affine layers (Rescaling, Normalization, unfolded BatchNormalization)
    # run as one int8 1x1 depthwise convolution instead of two float ops.
    affine = {}
    for name, layer in layers.items():
        if isinstance(layer, QuantizeAnnotate) and layer.quantize_config is None and name not in folded:
            replacement = transforms.affine_as_depthwise(layer.layer)
            if replacement is not None:
                affine[name] = replacement
    # An unfolded BatchNormalization fuses a ReLU only as a depthwise convolution.
    fused = {
        name
        for name in fold_plan.fused
        if name in affine or not isinstance(_unwrap(layers[name]), keras.layers.BatchNormalization)
    }
    configs, passthrough = _configs(layers, folds, folded, fused, scheme, affine)
    folded_names = {_unwrap(layers[name]).name for name in folded}
    affine_names = {replacement.name for replacement in affine.values()}
    fused_ops = _ops_fused_into_relu(model)
    input_quantizers = {}
    quantized_tensors = set()
    producers = {}
    taken = set(layers)

    def rebuild(layer):
        inner = _unwrap(layer)
        if layer.name in folded:
            return keras.layers.Identity(name=inner.name, dtype=inner.dtype_policy.name)
        if layer.name in folds:
            base = transforms.folded_layer(inner, _unwrap(layers[folds[layer.name]]))
        elif layer.name in affine:
            base = affine[layer.name]
        else:
            base = copy_unshared(inner)
        config = configs.get(layer.name)
        return QuantizeWrapper(base, config) if config is not None else base

    def quantize_input(tensor):
        if id(tensor) in quantized_tensors or not isinstance(tensor, keras.KerasTensor):
            return tensor
        if not keras.backend.is_float_dtype(tensor.dtype):
            return tensor  # token ids, masks: nothing to quantize
        if producers.get(id(tensor)) in fused_ops:
            return tensor  # the file fuses the ReLU reading it into the op: one rounding, on the ReLU's grid
        if id(tensor) not in input_quantizers:
            quantizer = scheme.bits.activation_quantizer()
            # Named after the float layer it quantizes the output of, or the input.
            name = _unique_name(f"quantize_{producers.get(id(tensor), tensor.name)}", taken)
            taken.add(name)
            quantized = QuantizeLayer(quantizer, name=name, dtype="float32")(tensor)
            quantized_tensors.add(id(quantized))
            input_quantizers[id(tensor)] = quantized
        return input_quantizers[id(tensor)]

    def call(layer, *args, **kwargs):
        if isinstance(layer, QuantizeWrapper) and layer.layer.name in affine_names:
            args, kwargs = args[:1], {}  # a DepthwiseConv2D takes no training/mask
        if isinstance(layer, QuantizeWrapper):
            if scheme.quantize_activations:  # else weights only: every tensor stays float
                args, kwargs = keras.tree.map_structure(quantize_input, (args, kwargs))
            outputs = layer(*args, **kwargs)
            quantized_tensors.update(id(t) for t in keras.tree.flatten(outputs))
            return outputs
        if layer.name in folded_names:
            # The Identity standing for a folded BatchNormalization takes no mask/training.
            args, kwargs = args[:1], {}
        outputs = layer(*args, **kwargs)
        producers.update((id(t), layer.name) for t in keras.tree.flatten(outputs))
        inputs = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
        if layer.name in passthrough and inputs and all(id(t) in quantized_tensors for t in inputs):
            quantized_tensors.update(id(t) for t in keras.tree.flatten(outputs))
        return outputs

    return clone_graph_model(model, rebuild, action="quantize", advice=_ADVICE, call_function=call)


def quantize_scope(*args) -> keras.saving.CustomObjectScope:
    """A ``custom_object_scope`` for tfmot code that loads models inside one.

    kopt registers its classes with Keras, so loading needs no scope; this exists
    so that ``with quantize_scope(): keras.models.load_model(path)`` ports as is.

    """
    return keras.saving.custom_object_scope(*args) if args else keras.saving.custom_object_scope({})


def _configs(layers, folds, folded, fused, scheme, affine):
    configs, passthrough, unsupported = {}, set(folded), []
    bits_of, activations = scheme_base.bits_by_layer(scheme, layers), scheme.quantize_activations
    for name, layer in layers.items():
        if not isinstance(layer, QuantizeAnnotate):
            continue
        inner = affine.get(name, layer.layer)
        if layer.quantize_config is not None:
            configs[name] = layer.quantize_config
        elif name not in folded and registry.keeps_grid_as_op(inner) and _feeds_concatenate(layer):
            # Wrapped only so that it can round onto the concatenation's grid, as
            # the file does for all its readers (kopt.quantization.grid_links).
            configs[name] = NoOpQuantizeConfig()
        elif name in folded or registry.is_passthrough(inner):
            passthrough.update((name, inner.name))
        else:
            kernel = transforms.folded_kernel(inner, _unwrap(layers[folds[name]])) if name in folds else None
            bits = bits_of(name) if kernel is None else bits_of(name).for_folded_kernel(kernel)
            config = registry.quantize_config_for(inner, bits, quantize_activation=activations and name not in fused)
            if config is None:
                unsupported.append(inner)
            configs[name] = config
    if unsupported:
        raise ValueError(registry.unsupported_message(unsupported))
    for name in folded:
        passthrough.add(_unwrap(layers[name]).name)
    return configs, passthrough


def _ops_fused_into_relu(model):
    """Names of ``keras.ops`` additions, subtractions and products read only by a quantized ReLU.

    The converter fuses such a ReLU into the int8 op (MobileNetV3's
    ``relu6(x + 3)``), so the op's output is never rounded on a grid of its own.
    """
    names = set()
    outputs = {id(tensor) for tensor in model.outputs}
    members = {id(operation) for operation in model.operations}
    for operation in model.operations:
        if isinstance(operation, keras.layers.Layer) or type(operation).__name__ not in ("Add", "Subtract", "Multiply"):
            continue
        # An operation object is shared by the models cloned from one another: count this model's readers.
        readers = [node.operation for node in operation._outbound_nodes if id(node.operation) in members]
        if len(readers) != 1 or not isinstance(readers[0], QuantizeAnnotate) or id(operation.output) in outputs:
            continue
        if transforms.is_fusable_relu(readers[0].layer):
            names.add(operation.name)
    return names


def _feeds_concatenate(layer):
    """Whether a quantized Concatenate reads the output of the annotated ``layer``."""
    for node in getattr(layer, "_outbound_nodes", None) or []:
        reader = node.operation
        if isinstance(reader, QuantizeAnnotate) and isinstance(reader.layer, keras.layers.Concatenate):
            return reader.quantize_config is None or bool(reader.quantize_config.get_output_quantizers(reader.layer))
    return False


def _annotated_pair(producer, batch_norm):
    # Fold only where both layers are quantized and neither has a custom config.
    return all(
        isinstance(layer, QuantizeAnnotate) and layer.quantize_config is None for layer in (producer, batch_norm)
    )


def _unwrap(layer):
    return layer.layer if isinstance(layer, QuantizeAnnotate) else layer


def _functional(model):
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a keras.Model. Received: {model!r}")
    require_graph_model(model, action="quantize", advice=_ADVICE)
    if any(isinstance(_unwrap(layer), keras.Model) for layer in model.layers):
        # QAT rewrites one flat graph (folding, fusion, input quantizers): nested
        # Sequential/functional models (ConvNeXt's stem) have their layers called directly.
        return inline_nested_models(model, action="quantize", advice=_ADVICE)
    if isinstance(model, keras.Sequential):
        try:
            inputs, outputs = model.inputs, model.outputs
        except (AttributeError, ValueError) as err:
            raise ValueError(
                f"Sequential model {model.name!r} has no defined input; start it with keras.Input(shape) "
                "or call it on data before quantizing."
            ) from err
        # A single tensor, not a list of one: the model is then called as the
        # Sequential was, without Keras' input-structure warning.
        functional = keras.Model(_single(inputs), _single(outputs), name=model.name)
        if model.compiled:
            functional.compile_from_config(model.get_compile_config())
        return functional
    return model


def _single(tensors):
    return tensors[0] if len(tensors) == 1 else tensors


def _unique_name(base, taken):
    name, index = base, 1
    while name in taken:
        name, index = f"{base}_{index}", index + 1
    return name
