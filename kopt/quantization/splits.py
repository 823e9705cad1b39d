"""Layers that QAT trains as several: the ops the TFLite file really runs.

A Keras layer that the converter lowers to several integer ops hides the tensors
between them, so QAT could not learn their ranges. Before wrapping, an annotated
model's layers of that kind (with no ``QuantizeConfig`` of their own) are
rewritten as the layers the file runs, with the same weights:

* ``SeparableConv2D``: a DepthwiseConv2D, then a 1x1 Conv2D; ``SeparableConv1D``
  likewise in one dimension (:func:`split_separable`);
* ``MultiHeadAttention``: query, key and value ``Dense`` projections, an
  :class:`~kopt.quantization.attention.AttentionCore` (scores and softmax in
  float) and an output projection (:func:`kopt.quantization.attention.split_attention`);
* ``TimeDistributed(Dense)`` (a sequence tagger's head): the ``Dense`` itself,
  which applies to the last axis of a sequence as the wrapper does
  (:func:`unwrapped_dense`), so it quantizes like any Dense;
* ``TimeDistributed`` around a spatial layer (``Conv2D``, pooling, ``Flatten``: a
  video model's per-frame layers): the frames folded into the batch, the inner
  layer, and the frames unfolded again (:func:`kopt.quantization.frames.unwrapped_frames`);
* InceptionResNetV2's ``CustomScaleLayer`` (``x + r * scale``, the scaled
  residual of each block): a ``Rescaling`` of ``r``, then an ``Add``
  (:func:`split_scaled_add`); the file's product is int8 with a range of its own.

The rewritten model computes what the original did; ``strip_quantization``
returns it in that form.
"""

import keras

from kopt.quantization import attention as attention_lib
from kopt.quantization.annotate import QuantizeAnnotate
from kopt.quantization.annotate import copy_annotation
from kopt.quantization.frames import unwrapped_frames
from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_unshared
from tflite_export.cloning import inline_nested_models
from tflite_export.layers import leaf_layers

L = keras.layers
# A separable convolution -> the depthwise and the pointwise layer it is split into.
_SEPARABLE = {L.SeparableConv1D: (L.DepthwiseConv1D, L.Conv1D), L.SeparableConv2D: (L.DepthwiseConv2D, L.Conv2D)}

__all__ = ["check_attention_masks", "split_annotated", "split_scaled_add", "split_separable", "unwrapped_dense"]


def check_attention_masks(model):
    """Refuses a MultiHeadAttention reading inputs with a Keras mask, which the split cannot carry.

    Annotating a model drops Keras masks (``Embedding(mask_zero=True)``,
    ``Masking``), so this is checked on the model as the user built it.
    """
    for layer in getattr(model, "layers", []):
        if not isinstance(layer, keras.layers.MultiHeadAttention):
            continue
        for node in getattr(layer, "_inbound_nodes", None) or []:  # the layer's calls in the graph
            if any(getattr(tensor, "_keras_mask", None) is not None for tensor in node.arguments.keras_tensors):
                raise ValueError(
                    f"kopt.quantization cannot quantize MultiHeadAttention layer {layer.name!r}: its inputs carry "
                    "a Keras mask (Embedding(mask_zero=True) or Masking); pass the mask as attention_mask instead."
                )


def split_annotated(model, *, advice):
    """``model`` with its annotated separable convolutions and attention layers split (see above)."""
    plans = {}
    backbone_layers = set()  # ids of the layers of models that per-frame layers wrapped
    for layer in model.layers:
        if not isinstance(layer, QuantizeAnnotate) or layer.quantize_config is not None:
            continue
        if isinstance(layer.layer, keras.layers.MultiHeadAttention):
            plans[layer.name] = (
                "attention",
                [QuantizeAnnotate(part) for part in attention_lib.split_attention(layer.layer)],
            )
        elif unwrapped_dense(layer.layer) is not None:
            plans[layer.name] = ("unwrapped", [QuantizeAnnotate(unwrapped_dense(layer.layer))])
        elif (frames := unwrapped_frames(layer.layer)) is not None:
            fold, inner, unfold = frames
            if isinstance(inner, keras.Model):  # a per-frame backbone: inlined below, its layers annotated
                backbone_layers.update(id(part) for part in leaf_layers(inner))
            else:
                inner = QuantizeAnnotate(inner)
            plans[layer.name] = ("frames", [QuantizeAnnotate(fold), inner, QuantizeAnnotate(unfold)])
        elif (scaled_add := split_scaled_add(layer.layer)) is not None:
            plans[layer.name] = ("scaled_add", [QuantizeAnnotate(part) for part in scaled_add])
        else:
            parts = split_separable(layer.layer)
            if parts is not None:
                plans[layer.name] = ("separable", [QuantizeAnnotate(part) for part in parts])
    if not plans:
        return model
    by_first_part = {}
    cores_called = set()
    folded_frames = {}  # id(an UnfoldSteps output) -> the folded tensor it unfolded

    def rebuild(layer):
        if layer.name not in plans:
            return copy_unshared(layer)
        kind, parts = plans[layer.name]
        by_first_part[id(parts[0])] = (layer, kind, parts)
        return parts[0]

    def call(layer, *args, **kwargs):
        if id(layer) not in by_first_part:
            return layer(*args, **kwargs)
        original, kind, parts = by_first_part[id(layer)]
        if kind == "unwrapped":
            return layer(args[0])
        if kind == "frames":
            # Right after another per-frame layer the frames are still folded: no unfold-fold pair between.
            folded = folded_frames.get(id(args[0]))
            frames = parts[1](layer(args[0]) if folded is None else folded)
            unfolded = parts[2](frames)
            folded_frames[id(unfolded)] = frames
            return unfolded
        if kind == "separable":
            return parts[1](layer(args[0]))
        if kind == "scaled_add":
            shortcut, residual = args[0]
            return parts[1]([shortcut, layer(residual)])
        query_dense, key_dense, value_dense, core, output_dense = parts
        query, key, value, mask, causal, training = attention_lib.bind_call(original.layer, args, kwargs)
        if id(core) in cores_called and core.layer.use_causal_mask != causal:
            raise ValueError(
                f"kopt.quantization cannot quantize shared MultiHeadAttention layer {original.layer.name!r}: "
                "it is called both with and without use_causal_mask."
            )
        cores_called.add(id(core))
        core.layer.use_causal_mask = causal
        extra = {} if training is None else {"training": training}
        attended = core(query_dense(query), key_dense(key), value_dense(value), attention_mask=mask, **extra)
        return output_dense(attended)

    split = clone_graph_model(model, rebuild, action="quantize", advice=advice, call_function=call)
    if not backbone_layers:
        return split

    def annotated(layer):
        if isinstance(layer, QuantizeAnnotate):
            return copy_annotation(layer)
        return QuantizeAnnotate(copy_unshared(layer)) if id(layer) in backbone_layers else copy_unshared(layer)

    return inline_nested_models(split, annotated, action="quantize", advice=advice)


def unwrapped_dense(layer):
    """The ``Dense`` inside a built ``TimeDistributed(Dense)``, as a layer of the wrapper's name, or ``None``.

    A Keras ``Dense`` multiplies the last axis of any input, so on ``(batch,
    steps, features)`` it computes what the wrapper computes, and the file runs
    it as one FULLY_CONNECTED.

    Example:

    >>> import keras, numpy as np
    >>> wrapped = keras.layers.TimeDistributed(keras.layers.Dense(3), name="tags")
    >>> x = np.random.default_rng(0).random((2, 5, 4)).astype("float32")
    >>> expected = wrapped(x)
    >>> dense = unwrapped_dense(wrapped)
    >>> dense.name, bool(np.allclose(dense(x), expected))
    ('tags', True)
    """
    if not isinstance(layer, keras.layers.TimeDistributed) or not layer.built:
        return None
    inner = layer.layer
    if type(inner) is not keras.layers.Dense:
        return None
    dense = keras.layers.Dense.from_config({**inner.get_config(), "name": layer.name})
    dense.build((None, int(inner.kernel.shape[0])))
    dense.set_weights(inner.get_weights())
    return dense


def split_scaled_add(layer):
    """``(Rescaling, Add)`` computing Keras' InceptionResNetV2 ``CustomScaleLayer``, or ``None``.

    That layer adds a block's residual branch scaled by a constant to its
    shortcut, ``x + r * scale``, in one call; the converter emits a MUL and an
    ADD, and in an int8 file the product between them has a range of its own.
    Split, the product is a ``Rescaling`` output that QAT gives a range like any
    other. The ``Add`` keeps the original name; the ``Rescaling`` is named
    ``<name>_scale``. The layer is recognised by its class name and ``scale``
    attribute, as Keras does not export the class.

    Example:

    >>> import keras, numpy as np
    >>> from keras.applications import InceptionResNetV2
    >>> block = next(layer for layer in InceptionResNetV2(weights=None, include_top=False,
    ...     input_shape=(75, 75, 3)).layers if type(layer).__name__ == "CustomScaleLayer")
    >>> scale, add = split_scaled_add(block)
    >>> x, r = np.ones((1, 2)), np.full((1, 2), 2.0)
    >>> add([x, scale(r)]).numpy().tolist() == block([x, r]).numpy().tolist()
    True
    """
    if type(layer).__name__ != "CustomScaleLayer" or not type(layer).__module__.startswith("keras."):
        return None
    scale = getattr(layer, "scale", None)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        return None
    dtype = layer.dtype_policy.name
    return (L.Rescaling(float(scale), name=f"{layer.name}_scale", dtype=dtype), L.Add(name=layer.name, dtype=dtype))


def split_separable(layer):
    """``(DepthwiseConv2D, Conv2D 1x1)`` computing a built SeparableConv2D (1-D: Conv1D), or ``None``.

    TFLite has no separable convolution: the converter emits a DEPTHWISE_CONV_2D
    and then a 1x1 CONV_2D, and in an int8 file the tensor between them is int8
    with a range of its own. As one Keras layer that tensor is never seen, so QAT
    could not learn its range; as two layers it gets an output quantizer like any
    other, and each kernel its own per-channel weight quantizer. The pointwise
    layer keeps the original name (a BatchNormalization after it still folds
    into it), the depthwise one is named ``<name>_depthwise``. Only channels-last
    layers are split.

    Example:

    >>> import keras, numpy as np
    >>> separable = keras.layers.SeparableConv2D(4, 3, padding="same", depth_multiplier=2)
    >>> separable.build((None, 5, 5, 3))
    >>> depthwise, pointwise = split_separable(separable)
    >>> x = np.random.default_rng(0).random((1, 5, 5, 3)).astype("float32")
    >>> bool(np.allclose(pointwise(depthwise(x)), separable(x), atol=1e-5))
    True
    """
    kind = next((kind for kind in _SEPARABLE if isinstance(layer, kind)), None)
    if kind is None or layer.data_format != "channels_last" or not layer.built:
        return None
    depthwise_class, pointwise_class = _SEPARABLE[kind]
    depthwise_kernel, pointwise_kernel, *bias = layer.get_weights()
    dtype = layer.dtype_policy.name
    depthwise = depthwise_class(
        layer.kernel_size,
        strides=layer.strides,
        padding=layer.padding,
        depth_multiplier=layer.depth_multiplier,
        dilation_rate=layer.dilation_rate,
        use_bias=False,
        depthwise_regularizer=layer.depthwise_regularizer,
        depthwise_constraint=layer.depthwise_constraint,
        name=f"{layer.name}_depthwise",
        dtype=dtype,
    )
    pointwise = pointwise_class(
        layer.filters,
        1,
        activation=layer.activation,
        use_bias=layer.use_bias,
        kernel_regularizer=layer.pointwise_regularizer,
        kernel_constraint=layer.pointwise_constraint,
        bias_regularizer=layer.bias_regularizer,
        bias_constraint=layer.bias_constraint,
        activity_regularizer=layer.activity_regularizer,
        name=layer.name,
        dtype=dtype,
    )
    unknown = (None,) * (depthwise_kernel.ndim - 1)  # batch and spatial axes
    depthwise.build(unknown + (depthwise_kernel.shape[-2],))
    depthwise.set_weights([depthwise_kernel])
    pointwise.build(unknown + (pointwise_kernel.shape[-2],))
    pointwise.set_weights([pointwise_kernel, *bias])
    return depthwise, pointwise
