"""kopt.quantization.transforms: BatchNormalization folding and fused-ReLU detection."""

import keras
import numpy as np
import pytest

from kopt.quantization.transforms import fold_batch_norm_weights
from kopt.quantization.transforms import folded_layer
from kopt.quantization.transforms import plan

L = keras.layers


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _randomize_batch_norm(batch_norm, seed):
    rng = np.random.default_rng(seed)
    channels = batch_norm.moving_mean.shape[0]
    values = {
        "gamma": rng.uniform(0.5, 2.0, channels),
        "beta": rng.normal(size=channels),
        "moving_mean": rng.normal(size=channels),
        "moving_variance": rng.uniform(0.1, 3.0, channels),
    }
    for name, value in values.items():
        variable = getattr(batch_norm, name, None)
        if variable is not None:
            variable.assign(value.astype("float32"))


@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda bias: L.Conv2D(6, 3, use_bias=bias, padding="same"), (4, 7, 7, 3)),
        (lambda bias: L.DepthwiseConv2D(3, depth_multiplier=2, use_bias=bias), (4, 7, 7, 3)),
        (lambda bias: L.Dense(5, use_bias=bias), (4, 9)),
        (lambda bias: L.Conv1D(4, 2, use_bias=bias), (4, 6, 3)),
    ],
    ids=["conv2d", "depthwise_x2", "dense", "conv1d"],
)
def test_folding_gives_the_inference_output_of_layer_then_batch_norm(make, shape, use_bias, center, scale):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    layer = make(use_bias)
    batch_norm = L.BatchNormalization(center=center, scale=scale, epsilon=0.01)
    batch_norm(layer(x), training=False)  # builds both
    if use_bias:
        layer.bias.assign(rng.normal(size=layer.bias.shape).astype("float32"))
    _randomize_batch_norm(batch_norm, 1)
    expected = _numpy(batch_norm(layer(x), training=False))
    folded = folded_layer(layer, batch_norm)
    assert type(folded) is type(layer) and folded.use_bias and folded is not layer
    np.testing.assert_allclose(_numpy(folded(x)), expected, rtol=1e-4, atol=1e-4)
    # The original layer keeps its own weights.
    assert layer.use_bias == use_bias


def test_fold_batch_norm_weights_formula():
    kernel = np.array([[1.0, 2.0], [3.0, 4.0]])
    statistics = {"gamma": [2.0, 1.0], "beta": [0.5, -1.0], "moving_mean": [1.0, 2.0], "moving_variance": [3.0, 8.0]}
    folded_kernel, folded_bias = fold_batch_norm_weights(kernel, np.array([1.0, 1.0]), statistics, epsilon=1.0)
    scale = np.array([2.0 / 2.0, 1.0 / 3.0])
    np.testing.assert_allclose(folded_kernel, kernel * scale, rtol=1e-6)
    np.testing.assert_allclose(folded_bias, (np.array([1.0, 1.0]) - [1.0, 2.0]) * scale + [0.5, -1.0], rtol=1e-6)
    assert folded_kernel.dtype == np.float32


def _conv_bn(**bn_kwargs):
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, name="conv")(inputs)
    x = L.BatchNormalization(name="bn", **bn_kwargs)(x)
    return inputs, x


def test_plan_folds_a_batch_norm_that_follows_a_linear_layer():
    inputs, x = _conv_bn()
    assert plan(keras.Model(inputs, x)).folds == {"conv": "bn"}
    inputs = keras.Input((5,))
    x = L.BatchNormalization(name="bn2")(L.Dense(3, name="fc")(inputs))
    result = plan(keras.Model(inputs, x))
    assert result.folds == {"fc": "bn2"} and result.folded_batch_norms == {"bn2"}
    assert plan(keras.Model(inputs, x), fold_batch_norm=False).folds == {}


def test_no_fold_when_the_convolution_has_two_consumers():
    inputs = keras.Input((8, 8, 3))
    conv = L.Conv2D(4, 3, name="conv")(inputs)
    x = L.Add(name="add")([L.BatchNormalization(name="bn")(conv), conv])
    assert plan(keras.Model(inputs, x)).folds == {}
    # Also when the convolution output is a model output too.
    inputs = keras.Input((8, 8, 3))
    conv = L.Conv2D(4, 3, name="conv")(inputs)
    assert plan(keras.Model(inputs, [L.BatchNormalization(name="bn")(conv), conv])).folds == {}


def test_no_fold_when_the_convolution_is_called_twice():
    inputs = keras.Input((8, 8, 4))
    conv = L.Conv2D(4, 3, padding="same", name="conv")
    x = L.BatchNormalization(name="bn")(conv(conv(inputs)))
    assert plan(keras.Model(inputs, x)).folds == {}


def test_no_fold_through_a_nonlinear_activation():
    inputs = keras.Input((8, 8, 3))
    x = L.BatchNormalization(name="bn")(L.Conv2D(4, 3, activation="relu", name="conv")(inputs))
    assert plan(keras.Model(inputs, x)).folds == {}


@pytest.mark.parametrize("axis", [1, 2, -2])
def test_no_fold_when_batch_norm_normalizes_another_axis(axis):
    inputs, x = _conv_bn(axis=axis)
    assert plan(keras.Model(inputs, x)).folds == {}


def test_no_fold_for_batch_norm_after_an_unfoldable_layer():
    inputs = keras.Input((8, 8, 3))
    x = L.BatchNormalization(name="bn")(L.MaxPooling2D(name="pool")(inputs))
    assert plan(keras.Model(inputs, x)).folds == {}


@pytest.mark.parametrize(
    "make_relu",
    [lambda: L.ReLU(), lambda: L.ReLU(max_value=6.0), lambda: L.Activation("relu"), lambda: L.Activation("relu6")],
    ids=["ReLU", "ReLU6", "Activation_relu", "Activation_relu6"],
)
def test_relu_after_a_folded_batch_norm_is_fused_into_the_convolution(make_relu):
    inputs, x = _conv_bn()
    result = plan(keras.Model(inputs, make_relu()(x)))
    assert result.folds == {"conv": "bn"} and result.fused == {"conv"}


@pytest.mark.parametrize(
    "make_relu",
    [
        lambda: L.LeakyReLU(),
        lambda: L.ReLU(negative_slope=0.1),
        lambda: L.ReLU(max_value=4.0),
        lambda: L.ReLU(threshold=0.5),
        lambda: L.Activation("gelu"),
        lambda: L.PReLU(),
    ],
    ids=["LeakyReLU", "negative_slope", "max_value_4", "threshold", "gelu", "PReLU"],
)
def test_other_activations_are_not_fused(make_relu):
    inputs = keras.Input((8, 8, 3))
    x = make_relu()(L.Conv2D(4, 3, name="conv")(inputs))
    assert plan(keras.Model(inputs, x)).fused == set()


def test_relu_after_add_is_fused_but_not_after_a_convolution_with_an_activation():
    inputs = keras.Input((8, 8, 4))
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = L.ReLU(name="relu")(L.Add(name="add")([a, inputs]))
    y = L.ReLU(name="relu2")(a)
    assert plan(keras.Model(inputs, [x, y])).fused == {"add"}


def test_relu_is_not_fused_when_the_producer_has_other_readers():
    inputs = keras.Input((8, 8, 3))
    conv = L.Conv2D(4, 3, name="conv")(inputs)
    x = L.Add(name="add")([L.ReLU(name="relu")(conv), conv])
    assert plan(keras.Model(inputs, x)).fused == set()


def test_an_unfolded_batch_norm_read_by_a_relu_fuses_it():
    # DenseNet's pre-activation BatchNormalization runs as a 1x1 depthwise convolution with the ReLU fused.
    inputs = keras.Input((8, 8, 4))
    x = L.BatchNormalization(name="bn")(L.MaxPooling2D()(inputs))
    result = plan(keras.Model(inputs, L.ReLU()(x)))
    assert result.folds == {} and result.fused == {"bn"}
