"""Keras LSTM layers as TFLite's fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op.

Keras 3 runs an LSTM as a ``while`` loop over time steps, which the converter
keeps as a ``WHILE`` op with a subgraph of small ops per step. The converter
does fuse a loop into its LSTM kernel when the loop is a function that declares
itself an implementation of the Keras LSTM (function attribute
``api_implements="lstm_<id>"``, the convention Keras 2 used): it then reads the
function's arguments (inputs, initial states, kernel, recurrent kernel, bias)
and replaces the whole body with the one op. :func:`fused` makes a conversion
copy of a model whose plain LSTM layers call such a function.

The fused op keeps its state in variable tensors between invocations. A Keras
LSTM (not ``stateful``) starts every call from zeros, so a runtime must reset
them before each new sequence (LiteRT: ``interpreter.reset_all_variables()``);
:func:`tflite_export.predict` does.
"""

import uuid

import keras
import tensorflow as tf

from tflite_export import recurrent

__all__ = ["FusedLSTM", "fused", "why_not_fused"]


def why_not_fused(layer):
    """Why ``layer`` cannot become the fused op, or ``None`` when it can.

    Example:

    >>> lstm = keras.layers.LSTM(4)
    >>> _ = lstm(keras.Input((10, 3)))
    >>> why_not_fused(lstm) is None
    True
    >>> why_not_fused(keras.layers.LSTM(4, activation="relu"))
    "activation is 'relu'; the fused op computes tanh"
    """
    if type(layer) is not keras.layers.LSTM:
        return "not a keras.layers.LSTM"
    settings = (
        ("activation", keras.activations.tanh, "the fused op computes tanh"),
        ("recurrent_activation", keras.activations.sigmoid, "the fused op's gates are sigmoids"),
    )
    for name, wanted, reason in settings:
        function = getattr(layer.cell, name)
        if function is not wanted:
            return f"{name} is {keras.activations.serialize(function)!r}; {reason}"
    for name, reason in (
        ("stateful", "its state carries over between batches"),
        ("go_backwards", "it reads the sequence backwards"),
        ("return_state", "the fused op does not return the cell state"),
        ("unroll", "it asks for an unrolled loop"),
    ):
        if getattr(layer, name):
            return f"{name}=True: {reason}"
    if not layer.cell.use_bias:
        return "use_bias=False"
    nodes = layer._inbound_nodes
    if len(nodes) != 1:
        return f"it is called {len(nodes)} times"
    arguments = nodes[0].arguments
    given = {name for name, value in arguments.kwargs.items() if value is not None and name != "training"}
    if "mask" in given or getattr(arguments.args[0], "_keras_mask", None) is not None:
        return "its input carries a mask"
    if given or len(arguments.args) != 1:
        return "it is called with an initial state"
    return None


@keras.saving.register_keras_serializable(package="kopt")
class FusedLSTM(keras.layers.Layer):
    """Conversion stand-in for an LSTM: same weights, a loop the converter fuses.

    Only :func:`fused` builds it, for conversion; it computes what the LSTM
    computes.

    Args:
        units: The LSTM's units.
        return_sequences: Return every step's output, not only the last.
    """

    def __init__(self, units, return_sequences=False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.return_sequences = return_sequences
        self._loop = _keras_lstm_function()

    def build(self, input_shape):
        features = input_shape[-1]
        self.kernel = self.add_weight(shape=(features, 4 * self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, 4 * self.units), name="recurrent_kernel")
        self.bias = self.add_weight(shape=(4 * self.units,), name="bias")

    def call(self, inputs, mask=None, training=None):
        del mask, training  # the LSTM it stands in for had no mask; inference only
        batch = inputs.shape[0] if inputs.shape[0] is not None else tf.shape(inputs)[0]
        zeros = tf.zeros((batch, self.units), inputs.dtype)
        weights = [
            tf.cast(tf.convert_to_tensor(w), inputs.dtype) for w in (self.kernel, self.recurrent_kernel, self.bias)
        ]
        last, sequence, _, _, _ = self._loop(inputs, zeros, zeros, *weights)
        return sequence if self.return_sequences else last

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return tuple(input_shape[:-1]) + (self.units,)
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "return_sequences": self.return_sequences}


def _keras_lstm_function():
    """A batch-major LSTM loop annotated as the Keras LSTM the converter fuses.

    The converter reads the arguments and the ``time_major``/``go_backwards``
    attributes and keeps none of the body, which only has to compute the same
    thing for TensorFlow. Each layer gets its own name, as the attribute asks.
    """
    attributes = {
        "api_implements": f"lstm_{uuid.uuid4().hex}",
        "api_preferred_device": "CPU",
        "time_major": False,
        "go_backwards": False,
    }

    @tf.function(experimental_attributes=attributes, autograph=False)
    def keras_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        steps = tf.shape(inputs)[1]
        time_major = tf.transpose(inputs, [1, 0, 2])

        def step(t, h, c, outputs):
            gates = tf.matmul(time_major[t], kernel) + tf.matmul(h, recurrent_kernel) + bias
            i, f, g, o = tf.split(gates, 4, axis=1)  # Keras's gate order
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            return t + 1, h, c, outputs.write(t, h)

        outputs = tf.TensorArray(inputs.dtype, size=steps)
        _, h, c, outputs = tf.while_loop(lambda t, *_: t < steps, step, (0, init_h, init_c, outputs))
        # Keras 2's five results: last output, all outputs, h, c, and a runtime tag.
        return h, tf.transpose(outputs.stack(), [1, 0, 2]), h, c, tf.constant(0.0)

    return keras_lstm


def fused(model):
    """A copy of ``model`` whose fusable LSTM layers become :class:`FusedLSTM`; ``model`` if none.

    Only top-level layers are replaced; an LSTM in a nested model or a
    Bidirectional keeps the loop.

    Returns:
        ``(model, names)``: the model to convert and the names of the LSTM layers
        that will be fused.
    """
    names = [layer.name for layer in model.layers if type(layer) is keras.layers.LSTM and why_not_fused(layer) is None]
    if not names or not getattr(model, "inputs", None):
        return model, []

    def replace(layer):
        if layer.name not in names:
            return None
        # FusedLSTM holds the LSTM's weights in the LSTM's order.
        return FusedLSTM(layer.units, layer.return_sequences, name=layer.name, dtype=layer.dtype_policy)

    return recurrent.rebuilt(model, replace), names
