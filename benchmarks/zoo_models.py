"""The architectures of the conformance matrix, built small and untrained.

Each builder returns a fresh ``keras.Model`` (``weights=None``, 10 classes) and an
input sampler; inputs are kept small (32x32 images, 16 tokens, 12 time steps) so
that every technique on every model fits a CI budget. The image models read
real CIFAR-10 pixels from ``../shared/data/cifar10-15k.npz`` when it is there,
scaled as each family's own preprocessing expects, and random pixels otherwise.
"""

import os

import keras
import numpy as np

__all__ = ["MODELS", "build", "sample_inputs"]

L = keras.layers
A = keras.applications
IMAGE = (32, 32, 3)
VOCAB, TOKENS = 64, 16
STEPS, FEATURES = 12, 8
_CIFAR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cifar10-15k.npz")


def _transformer_encoder():
    tokens = keras.Input((TOKENS,), dtype="int32", name="tokens")
    x = L.Embedding(VOCAB, 32, name="embedding")(tokens)
    attended = L.MultiHeadAttention(num_heads=4, key_dim=8, name="attention")(x, x)
    x = L.LayerNormalization(name="attention_norm")(L.Add()([x, attended]))
    hidden = L.Dense(64, activation="gelu", name="ffn_in")(x)
    x = L.LayerNormalization(name="ffn_norm")(L.Add()([x, L.Dense(32, name="ffn_out")(hidden)]))
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, L.Dense(10, name="logits")(x), name="transformer_encoder")


def _recurrent(layer_class):
    def build_model():
        sequence = keras.Input((STEPS, FEATURES), name="sequence")
        x = layer_class(32, name=layer_class.__name__.lower())(sequence)
        return keras.Model(sequence, L.Dense(10, name="logits")(x), name=f"{layer_class.__name__.lower()}_classifier")

    return build_model


def _bidirectional():
    sequence = keras.Input((STEPS, FEATURES), name="sequence")
    x = L.Bidirectional(L.LSTM(32), name="bidirectional_lstm")(sequence)
    return keras.Model(sequence, L.Dense(10, name="logits")(x), name="bidirectional_lstm_classifier")


def _application(constructor, scale, **kwargs):
    def build_model():
        return constructor(input_shape=IMAGE, weights=None, classes=10, **kwargs)

    build_model.scale = scale
    return build_model


# name -> (builder, input kind); "caffe" is ResNet50's preprocessing (BGR minus the ImageNet mean).
MODELS = {
    "MobileNet": (_application(A.MobileNet, "tf", alpha=0.25), "image"),
    "MobileNetV2": (_application(A.MobileNetV2, "tf", alpha=0.35), "image"),
    "MobileNetV3Small": (_application(A.MobileNetV3Small, "raw", minimalistic=False), "image"),
    "MobileNetV3Large": (_application(A.MobileNetV3Large, "raw", minimalistic=False), "image"),
    "EfficientNetB0": (_application(A.EfficientNetB0, "raw"), "image"),
    "EfficientNetV2B0": (_application(A.EfficientNetV2B0, "raw"), "image"),
    "ResNet50": (_application(A.ResNet50, "caffe"), "image"),
    "DenseNet121": (_application(A.DenseNet121, "torch"), "image"),
    "NASNetMobile": (_application(A.NASNetMobile, "tf"), "image"),
    "ConvNeXtTiny": (_application(A.ConvNeXtTiny, "raw"), "image"),
    "TransformerEncoder": (_transformer_encoder, "tokens"),
    "LSTM": (_recurrent(L.LSTM), "sequence"),
    "GRU": (_recurrent(L.GRU), "sequence"),
    "BidirectionalLSTM": (_bidirectional, "sequence"),
}


def build(name):
    """A fresh, untrained model of the matrix, seeded so reruns build the same weights."""
    if name not in MODELS:
        raise ValueError(f"unknown model; choose from {', '.join(MODELS)}. Received: name={name!r}")
    keras.utils.set_random_seed(0)
    return MODELS[name][0]()


def sample_inputs(name, count, *, seed=0):
    """``(inputs, labels)`` for ``name``: CIFAR-10 images where the data is there."""
    builder, kind = MODELS[name]
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count)
    if kind == "tokens":
        return rng.integers(0, VOCAB, size=(count, TOKENS)).astype("int32"), labels
    if kind == "sequence":
        return rng.normal(size=(count, STEPS, FEATURES)).astype("float32"), labels
    if os.path.isfile(_CIFAR):
        data = np.load(_CIFAR)
        pixels = data["x_test"][seed * count : (seed + 1) * count].astype("float32")
        labels = data["y_test"][seed * count : (seed + 1) * count].astype("int64").reshape(-1)
    else:
        pixels = rng.integers(0, 256, size=(count,) + IMAGE).astype("float32")
    return _preprocess(pixels, builder.scale), labels


def _preprocess(pixels, scale):
    if scale == "tf":
        return pixels / 127.5 - 1.0
    if scale == "torch":
        return (pixels / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    if scale == "caffe":
        return (pixels[..., ::-1] - np.array([103.939, 116.779, 123.68])).astype("float32")
    return pixels  # models with preprocessing layers of their own take raw pixels
