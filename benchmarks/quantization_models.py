"""The quantization benchmark's models, built with whichever Keras the caller passes.

kopt's side passes Keras 3 and the tfmot worker passes tf_keras, so both sides
train the same architecture from one definition. The module imports nothing, so
the worker, which runs in tfmot's own environment without kopt, imports it as a
sibling file.

``conv_bn_cnn`` is the benchmark's model: convolutions followed by
BatchNormalization and ReLU, the block QAT must fold (so the ranges it trains are
those of the folded convolution TFLite runs), and enough weights (225k) that the
file is mostly weights, as in the models people quantize to ship. The
20k-weight CNN of tfmot's examples, which the pruning and clustering benchmarks
use, is kept as ``tfmot_example_cnn``: its float file holds about 2 KB of tensor
and operator tables that int8 does not shrink, so its size ratio says more about
the flatbuffer format than about quantization.
"""

DEFAULT_MODEL = "conv_bn_cnn"

# One line per model for the settings description, parameter count included
# (tests/benchmarks/test_quantization_benchmark.py checks the counts).
DESCRIPTIONS = {
    "conv_bn_cnn": (
        "conv-BN CNN: Reshape(28,28,1) -> [Conv2D(16, 3x3, same, no bias) -> BatchNorm -> ReLU] -> "
        "[Conv2D(32) -> BatchNorm -> ReLU] -> MaxPool(2x2) -> [Conv2D(64) -> BatchNorm -> ReLU] -> "
        "MaxPool(2x2) -> Flatten -> Dense(64, ReLU) -> Dense(10) logits; 225,050 parameters, of which 448 "
        "BatchNorm statistics and scales that QAT and the converter fold into the convolutions"
    ),
    "tfmot_example_cnn": (
        "tfmot example CNN (the pruning benchmark's): Reshape(28,28,1) -> Conv2D(12, 3x3, ReLU) -> "
        "MaxPool(2x2) -> Flatten -> Dense(10) logits; 20,410 parameters"
    ),
}
MODELS = tuple(DESCRIPTIONS)
# Short names for table rows.
LABELS = {"conv_bn_cnn": "conv-BN CNN", "tfmot_example_cnn": "tfmot example CNN"}
# The model the pruning, clustering and extras benchmarks train.
SHARED_MODEL = "tfmot_example_cnn"


def build(name, keras):
    """Builds model ``name`` (one of ``MODELS``) with the ``keras`` module given.

    Args:
        name: ``"conv_bn_cnn"`` or ``"tfmot_example_cnn"``.
        keras: The Keras module to build with (Keras 3 or tf_keras).

    Returns:
        An uncompiled model mapping ``(batch, 28, 28)`` images to 10 logits.

    Raises:
        ValueError: If ``name`` is not one of ``MODELS``.

    Example:

    >>> import keras
    >>> build("conv_bn_cnn", keras).count_params()
    225050
    """
    if name == "conv_bn_cnn":
        return _conv_bn_cnn(keras)
    if name == "tfmot_example_cnn":
        return _tfmot_example_cnn(keras)
    raise ValueError(f"model must be one of {', '.join(MODELS)}. Received: model={name!r}")


def _conv_bn_relu(layers, x, filters):
    # No bias: the BatchNorm's offset takes its place, and folding adds it back.
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _conv_bn_cnn(keras):
    return conv_bn_cnn(keras, (28, 28))


def conv_bn_cnn(keras, input_shape, name="conv_bn_cnn"):
    """The conv-BN CNN's layers on ``input_shape``: ``(28, 28)`` MNIST digits (reshaped to one channel) or
    ``(32, 32, 3)`` colour images (286,778 parameters there, the classifier reading an 8x8x64 map)."""
    layers = keras.layers
    inputs = keras.Input(shape=input_shape)
    x = layers.Reshape((*input_shape, 1))(inputs) if len(input_shape) == 2 else inputs
    x = _conv_bn_relu(layers, x, 16)
    x = _conv_bn_relu(layers, x, 32)
    x = layers.MaxPooling2D(2)(x)
    x = _conv_bn_relu(layers, x, 64)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(10)(x), name=name)


def _tfmot_example_cnn(keras):
    layers = keras.layers
    inputs = keras.Input(shape=(28, 28))
    x = layers.Reshape((28, 28, 1))(inputs)
    x = layers.Conv2D(12, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(10)(x), name="tfmot_example_cnn")
