"""The CIFAR-10 suite's networks, built the same way under Keras 3 (kopt) and tf_keras (tfmot).

Each builder takes the Keras module in use, so kopt's side and the tfmot worker
(``benchmarks/tfmot_cifar_worker.py``, which imports this file as a sibling)
train the same architecture from the same code:

* ``mobilenet_v2``: ``keras.applications.MobileNetV2`` (alpha 0.35, 32x32 input,
  ``weights=None``, 10 logits);
* ``resnet20``: the CIFAR ResNet of He et al. (2016): a 3x3 stem, three stages of
  three basic blocks with 16, 32 and 64 filters, 1x1 projection shortcuts where
  the shape changes, global average pooling and 10 logits.

BatchNormalization momentum is 0.9 in both: keras.applications' 0.999 suits
ImageNet's long schedules, and over a few thousand steps its moving statistics lag
the weights so far that inference predicts one class.

Example:

>>> import keras
>>> build("resnet20", keras, seed=0).count_params()
274042
"""

__all__ = ["MODELS", "build"]

MODELS = ("mobilenet_v2", "resnet20")
INPUT_SHAPE = (32, 32, 3)
CLASSES = 10
BN_MOMENTUM = 0.9


def build(name, keras, seed):
    """The network ``name`` of :data:`MODELS`, initialized from ``seed``, with ``keras``' layers.

    Raises:
        ValueError: For a name not in :data:`MODELS`.
    """
    if name not in MODELS:
        raise ValueError(f"model must be one of {MODELS}. Received: model={name!r}")
    keras.utils.set_random_seed(seed)
    if name == "mobilenet_v2":
        model = keras.applications.MobileNetV2(
            INPUT_SHAPE, alpha=0.35, weights=None, classes=CLASSES, classifier_activation=None
        )
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = BN_MOMENTUM
        return model
    return _resnet20(keras)


def _resnet20(keras):
    layers = keras.layers
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = _conv_bn(layers, inputs, 16, 1, "stem")
    x = layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            strides = 2 if stage > 0 and block == 0 else 1
            name = f"stage{stage + 1}_block{block + 1}"
            shortcut = x
            y = layers.ReLU(name=f"{name}_relu1")(_conv_bn(layers, x, filters, strides, f"{name}_1"))
            y = _conv_bn(layers, y, filters, 1, f"{name}_2")
            if strides != 1 or shortcut.shape[-1] != filters:
                shortcut = _conv_bn(layers, shortcut, filters, strides, f"{name}_shortcut", kernel_size=1)
            x = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(CLASSES, name="logits")(x), name="resnet20")


def _conv_bn(layers, x, filters, strides, name, kernel_size=3):
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
