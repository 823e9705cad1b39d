"""MultiHeadAttention for quantization-aware training: its projections as layers of their own.

A TFLite file runs a Keras ``MultiHeadAttention`` as four FULLY_CONNECTED
projections (query, key, value, output) around an attention core (scaled dot
products, softmax, the weighted sum of values). Inside one Keras layer the
projections' inputs and outputs are never seen, so QAT could neither learn their
ranges nor quantize their kernels. :func:`split_attention` rewrites a built
layer as three input projections, an :class:`AttentionCore` and an output
projection, with the original weights: the projections are ``Dense`` layers
(heads side by side) that QAT quantizes like any other (int8 kernel, input and
output). The core computes as the converter lowers it: the scaled dot products
and the softmax stay float, the attention weights are quantized on softmax's
fixed 1/256 grid for the int8 BATCH_MATMUL with the values, and its output is
quantized.

Supported: the default attention over the sequence axis of ``(batch, steps,
features)`` inputs, self- or cross-attention, an ``attention_mask`` tensor and
``use_causal_mask``. Anything else raises an error naming the layer.
"""

import inspect

import keras
import numpy as np
from keras import ops

from kopt.quantization.activations import attention_softmax

__all__ = ["AttentionCore", "bind_call", "split_attention", "unsupported_reason"]

_NEGATIVE = -1e9  # what Keras' masked softmax puts at masked positions


@keras.saving.register_keras_serializable(package="kopt")
class AttentionCore(keras.layers.Layer):
    """Scaled dot-product attention between projected queries, keys and values.

    Computes ``softmax(q k^T / sqrt(key_dim)) v`` for each of ``num_heads``
    heads, as ``MultiHeadAttention`` does between its projections. The inputs
    and the output hold the heads side by side on their last axis.

    Args:
        num_heads: Number of heads.
        key_dim: Size of each query/key head; the scores are divided by its square root.
        dropout: Dropout rate on the attention weights while training.
        use_causal_mask: Whether each query step attends only to itself and earlier steps.
        **kwargs: Base layer arguments.

    Call arguments:
        query: ``(batch, target_steps, num_heads * key_dim)``.
        key: ``(batch, source_steps, num_heads * key_dim)``.
        value: ``(batch, source_steps, num_heads * value_dim)``.
        attention_mask: Optional boolean ``(batch, target_steps, source_steps)``;
            ``False`` hides a source step from a target step.
        training: Whether dropout is active.

    Example:

    >>> import numpy as np
    >>> core = AttentionCore(num_heads=2, key_dim=4)
    >>> q = np.ones((2, 3, 8), "float32")
    >>> tuple(core(q, q, np.ones((2, 3, 10), "float32")).shape)
    (2, 3, 10)
    """

    def __init__(self, num_heads, key_dim, dropout=0.0, use_causal_mask=False, **kwargs):
        super().__init__(**kwargs)
        for argument, value in (("num_heads", num_heads), ("key_dim", key_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"AttentionCore {self.name!r}: {argument} must be a positive int. Received: {argument}={value!r}"
                )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"AttentionCore {self.name!r}: dropout must be in [0, 1). Received: dropout={dropout!r}")
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.dropout = float(dropout)
        self.use_causal_mask = bool(use_causal_mask)
        self._dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy) if self.dropout else None
        # An attribute so QAT can quantize the attention weights (see activations.attention_softmax).
        self.attention_activation = attention_softmax

    def build(self, query_shape, key_shape=None, value_shape=None, attention_mask_shape=None):
        self.built = True

    def _heads(self, tensor):
        # (batch, steps, heads * size) -> (batch, steps, heads, size)
        return ops.reshape(
            tensor, (-1, tensor.shape[1] or ops.shape(tensor)[1], self.num_heads, tensor.shape[-1] // self.num_heads)
        )

    def call(self, query, key, value, attention_mask=None, training=None):
        query = ops.multiply(self._heads(query), ops.cast(1.0 / float(self.key_dim) ** 0.5, query.dtype))
        key, value = self._heads(key), self._heads(value)
        scores = ops.einsum("bsnh,btnh->bnts", key, query)
        mask = None if attention_mask is None else ops.expand_dims(ops.cast(attention_mask, "bool"), 1)
        if self.use_causal_mask:
            causal = _causal_mask(ops.shape(query)[1], ops.shape(key)[1])
            mask = causal if mask is None else ops.logical_and(mask, causal)
        if mask is not None:
            scores = ops.where(mask, scores, ops.cast(_NEGATIVE, scores.dtype))
        weights = self.attention_activation(scores)
        if self._dropout_layer is not None:
            weights = self._dropout_layer(weights, training=training)
        attended = ops.einsum("bnts,bsnh->btnh", weights, value)
        return ops.reshape(
            attended, (-1, attended.shape[1] or ops.shape(attended)[1], value.shape[-2] * value.shape[-1])
        )

    def compute_output_shape(self, query_shape, key_shape=None, value_shape=None, attention_mask_shape=None):
        return tuple(query_shape[:-1]) + (tuple(value_shape)[-1] if value_shape else query_shape[-1],)

    def get_config(self):
        return {
            **super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim, "dropout": self.dropout,
            "use_causal_mask": self.use_causal_mask,
        }  # fmt: skip


def _causal_mask(target_steps, source_steps):
    ones = ops.ones((1, 1, target_steps, source_steps), dtype="int32")
    return ops.greater_equal(ops.cumsum(ones, axis=-2), ops.cumsum(ones, axis=-1))


def unsupported_reason(layer):
    """Why :func:`split_attention` cannot rewrite ``layer`` (a built MultiHeadAttention), or ``None``."""
    config = layer.get_config()
    if config.get("attention_axes") not in (None, [1], (1,), 1):
        return f"attention_axes={config['attention_axes']!r} (only the sequence axis of 3-D inputs is supported)"
    if config.get("use_gate"):
        return "use_gate=True"
    if config.get("sliding_window") is not None:
        return f"sliding_window={config['sliding_window']!r}"
    if not layer.built:
        return "the layer is not built"
    if len(layer._query_dense.kernel.shape) != 3:
        return "its inputs are not (batch, steps, features)"
    return None


def split_attention(layer):
    """``(query, key, value, core, output)`` layers computing a built ``MultiHeadAttention``.

    The projections are ``Dense`` layers holding the layer's own projection
    weights, reshaped to put the heads side by side (a TFLite FULLY_CONNECTED with
    its bias fused, which the int8 kernels need), named ``<name>_query``,
    ``_key``, ``_value`` and ``_output``; the :class:`AttentionCore` keeps the
    layer's name.

    Raises:
        ValueError: naming the layer, for the configurations listed in the module docstring.

    Example:

    >>> import keras, numpy as np
    >>> attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    >>> x = np.random.default_rng(0).random((1, 5, 8)).astype("float32")
    >>> expected = attention(x, x)
    >>> query, key, value, core, output = split_attention(attention)
    >>> bool(np.allclose(output(core(query(x), key(x), value(x))), expected, atol=1e-5))
    True
    """
    reason = unsupported_reason(layer)
    if reason is not None:
        raise ValueError(
            f"kopt.quantization cannot quantize MultiHeadAttention layer {layer.name!r}: {reason}. Give it a "
            "QuantizeConfig with quantize_annotate_layer (NoOpQuantizeConfig() keeps it in float)."
        )
    config = layer.get_config()
    dtype = layer.dtype_policy.name
    projections = [
        _as_dense(sublayer, f"{layer.name}_{suffix}", dtype, input_axes=1)
        for suffix, sublayer in (
            ("query", layer._query_dense),
            ("key", layer._key_dense),
            ("value", layer._value_dense),
        )
    ]
    core = AttentionCore(
        config["num_heads"], config["key_dim"], dropout=config["dropout"], name=layer.name, dtype=dtype
    )
    output = _as_dense(layer._output_dense, f"{layer.name}_output", dtype, input_axes=2)
    return (*projections, core, output)


def _as_dense(einsum_dense, name, dtype, *, input_axes):
    """A Dense computing ``einsum_dense``, whose kernel's first ``input_axes`` axes are contracted."""
    kernel = ops.convert_to_numpy(einsum_dense.kernel)
    fan_in = int(np.prod(kernel.shape[:input_axes]))
    kernel = kernel.reshape(fan_in, -1)
    bias = getattr(einsum_dense, "bias", None)
    config = einsum_dense.get_config()
    dense = keras.layers.Dense(
        kernel.shape[1],
        activation=config.get("activation"),
        use_bias=bias is not None,
        kernel_regularizer=config.get("kernel_regularizer"),
        bias_regularizer=config.get("bias_regularizer"),
        kernel_constraint=config.get("kernel_constraint"),
        bias_constraint=config.get("bias_constraint"),
        name=name,
        dtype=dtype,
    )
    dense.build((None, None, fan_in))
    dense.set_weights([kernel] + ([ops.convert_to_numpy(bias).reshape(-1)] if bias is not None else []))
    return dense


_SIGNATURE = inspect.signature(keras.layers.MultiHeadAttention.call)


def bind_call(layer, args, kwargs):
    """The call arguments of one ``MultiHeadAttention`` node, by name, checked.

    Returns:
        ``(query, key, value, attention_mask, use_causal_mask, training)``.
    """
    bound = _SIGNATURE.bind(None, *args, **kwargs).arguments
    for name in ("query_mask", "value_mask", "key_mask"):
        if bound.get(name) is not None:
            raise ValueError(
                f"kopt.quantization cannot quantize MultiHeadAttention layer {layer.name!r} called with {name}."
            )
    if bound.get("return_attention_scores"):
        raise ValueError(
            f"kopt.quantization cannot quantize MultiHeadAttention layer {layer.name!r}: it is called with "
            "return_attention_scores=True, and the split layer returns only the attention output."
        )
    query, value = bound["query"], bound["value"]
    key = bound.get("key")
    key = value if key is None else key
    if len(query.shape) != 3:
        raise ValueError(
            f"kopt.quantization cannot quantize MultiHeadAttention layer {layer.name!r}: its query has shape "
            f"{tuple(query.shape)}, and only (batch, steps, features) inputs are supported."
        )
    return query, key, value, bound.get("attention_mask"), bool(bound.get("use_causal_mask")), bound.get("training")
