"""widen and deepen on the networks people ship: keras.applications CNNs, a Transformer encoder, an LSTM.

Each grows a trained-looking model (random weights, BatchNormalization statistics
away from 0 and 1) where its structure is hardest: residual streams, squeeze-and-
excitation gates, a transformer's feed-forward block, an LSTM's units; the grown
model must compute what the original did. DenseNet121's concatenations are grown
by the conformance matrix (``benchmarks.zoo``'s widen and deepen cells) and by
``test_widen``'s Concatenate test.
"""

import keras
import numpy as np
import pytest

from kopt.transfer import deepen
from kopt.transfer import widen

RNG = np.random.default_rng(0)


def _statistics(model):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.set_weights(
                [RNG.uniform(0.5, 1.5, size), RNG.normal(0, 0.2, size), RNG.normal(0, 0.2, size),
                 RNG.uniform(0.5, 1.5, size)]
            )  # fmt: skip
    return model


def _application(name):
    return lambda: _statistics(getattr(keras.applications, name)(input_shape=(32, 32, 3), weights=None, classes=10))


def _transformer():
    inputs = keras.Input((16, 32))
    attended = keras.layers.MultiHeadAttention(4, 8, name="attention")(inputs, inputs)
    x = keras.layers.LayerNormalization(name="norm1")(keras.layers.Add()([inputs, attended]))
    hidden = keras.layers.Dense(64, activation="gelu", name="ffn1")(x)
    x = keras.layers.LayerNormalization(name="norm2")(
        keras.layers.Add()([x, keras.layers.Dense(32, name="ffn2")(hidden)])
    )
    return keras.Model(inputs, keras.layers.Dense(10, name="head")(keras.layers.GlobalAveragePooling1D()(x)))


def _lstm():
    inputs = keras.Input((28, 28))
    x = keras.layers.LSTM(32, name="lstm")(inputs)
    x = keras.layers.Dense(32, activation="relu", name="fc")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="head")(x))


CASES = [
    # (builder, widened layer, new width, layers widened with it, layer a deeper model inserts after)
    (_application("MobileNetV2"), "block_3_project", 48, ["block_4_project", "block_5_project"], "block_3_expand_relu"),
    (_application("ResNet50"), "conv2_block1_0_conv", 320, ["conv2_block3_3_conv"], "conv3_block1_out"),
    (_application("EfficientNetB0"), "block2a_expand_conv", 128, ["block2a_se_expand"], "block2a_project_bn"),
    (_transformer, "ffn1", 96, [], "ffn1"),
    (_lstm, "lstm", 48, [], "fc"),
]


@pytest.mark.parametrize(
    "build, layer_name, new_units, together, after",
    CASES,
    ids=["MobileNetV2", "ResNet50", "EfficientNetB0", "TransformerEncoder", "LSTM"],
)
def test_widen_and_deepen_keep_the_outputs(build, layer_name, new_units, together, after):
    model = build()
    x = RNG.normal(size=(4, *model.inputs[0].shape[1:])).astype("float32")
    expected = model.predict(x, verbose=0)
    assert np.abs(expected).max() > 1e-3
    wider = widen(model, layer_name, new_units, seed=1)
    for name in [layer_name, *together]:
        config = wider.get_layer(name).get_config()
        assert config.get("filters", config.get("units")) == new_units, name
    np.testing.assert_allclose(wider.predict(x, verbose=0), expected, atol=1e-5, rtol=1e-4)
    activation = None if build in (_lstm,) or "relu" in after else "linear"
    deeper = deepen(model, after, activation=activation)
    assert len(deeper.layers) == len(model.layers) + 1
    np.testing.assert_allclose(deeper.predict(x, verbose=0), expected, atol=1e-5, rtol=1e-4)
