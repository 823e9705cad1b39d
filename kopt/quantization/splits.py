"""Layers that QAT trains as several: the ops the TFLite file really runs.

A Keras layer that the converter lowers to several integer ops hides the tensors
between them, so QAT could not learn their ranges. Before wrapping, an annotated
model's layers of that kind (with no ``QuantizeConfig`` of their own) are
rewritten as the layers the file runs, with the same weights:

* ``SeparableConv2D``: a DepthwiseConv2D, then a 1x1 Conv2D
  (:func:`kopt.quantization.transforms.split_separable`);
* ``MultiHeadAttention``: query, key and value ``Dense`` projections, an
  :class:`~kopt.quantization.attention.AttentionCore` (scores and softmax in
  float) and an output projection (:func:`kopt.quantization.attention.split_attention`);
* ``TimeDistributed(Dense)`` (a sequence tagger's head): the ``Dense`` itself,
  which applies to the last axis of a sequence as the wrapper does
  (:func:`unwrapped_dense`), so it quantizes like any Dense.

The rewritten model computes what the original did; ``strip_quantization``
returns it in that form.
"""

import keras

from kopt.quantization import attention as attention_lib
from kopt.quantization import transforms
from kopt.quantization.annotate import QuantizeAnnotate
from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_unshared

__all__ = ["check_attention_masks", "split_annotated", "unwrapped_dense"]


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
        else:
            parts = transforms.split_separable(layer.layer)
            if parts is not None:
                plans[layer.name] = ("separable", [QuantizeAnnotate(part) for part in parts])
    if not plans:
        return model
    by_first_part = {}
    cores_called = set()

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
        if kind == "separable":
            return parts[1](layer(args[0]))
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

    return clone_graph_model(model, rebuild, action="quantize", advice=advice, call_function=call)


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
