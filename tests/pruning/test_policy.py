"""Tests for kopt.pruning.policy: PruneForLatencyOnXNNPack and custom policies."""

import keras
import pytest

from kopt.pruning import PruneForLatencyOnXNNPack
from kopt.pruning import PruneLowMagnitude
from kopt.pruning import PruningPolicy
from kopt.pruning import prune_low_magnitude
from kopt.testing import run_serialization_test


def _mobilenet_like(stem="tfmot", middle=None, head="gap"):
    inputs = keras.Input((32, 32, 3))
    if stem == "tfmot":
        x = keras.layers.ZeroPadding2D(((1, 1), (1, 1)))(inputs)
        x = keras.layers.Conv2D(8, 3, strides=2, padding="valid", name="stem")(x)
    elif stem == "same":
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="stem")(inputs)
    else:
        x = keras.layers.Conv2D(8, 3, strides=1, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    x = keras.layers.Activation("relu")(x)
    shortcut = x
    x = keras.layers.Conv2D(8, 1, name="pointwise_1")(x)
    x = keras.layers.Add()([x, shortcut])
    if middle is not None:
        x = middle(x)
    x = keras.layers.Conv2D(16, 1, name="pointwise_2")(x)
    if head == "gap":
        x = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = keras.layers.Flatten()(x)
    else:
        x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="classifier")(x))


@pytest.mark.parametrize("stem", ["tfmot", "same"])
def test_xnnpack_policy_prunes_only_1x1_convolutions(stem):
    pruned = prune_low_magnitude(_mobilenet_like(stem), pruning_policy=PruneForLatencyOnXNNPack())
    wrapped = [layer.layer.name for layer in pruned.layers if isinstance(layer, PruneLowMagnitude)]
    assert wrapped == ["pointwise_1", "pointwise_2"]


def test_xnnpack_policy_accepts_nested_sequential_blocks():
    block = keras.Sequential(
        [keras.Input((16, 16, 8)), keras.layers.Conv2D(8, 1, name="nested_pointwise"), keras.layers.ReLU()]
    )
    model = _mobilenet_like(middle=block)
    pruned = prune_low_magnitude(model, pruning_policy=PruneForLatencyOnXNNPack())
    nested = pruned.get_layer(block.name)
    assert isinstance(nested.layers[0], PruneLowMagnitude)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"stem": "stride1"}, "3x3 kernel, stride 2 and 3 input channels"),
        ({"head": "flatten"}, "GlobalAveragePooling2D"),
        ({"middle": keras.layers.MaxPooling2D(1)}, r"'max_pooling2d.*' \(MaxPooling2D\) is not supported"),
        # keras.ops nodes are part of the graph too (MobileNetV3's hard-sigmoid is x + 3.0).
        ({"middle": lambda x: x + 3.0}, r"^Operation 'add.*' \(Add\) is not supported"),
    ],
)
def test_xnnpack_policy_refuses_unsuitable_models(kwargs, message):
    with pytest.raises(ValueError, match=message):
        prune_low_magnitude(_mobilenet_like(**kwargs), pruning_policy=PruneForLatencyOnXNNPack())


def test_xnnpack_policy_refuses_subclassed_models_and_serializes():
    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(ValueError, match="subclassed model"):
        PruneForLatencyOnXNNPack().ensure_model_supports_pruning(Subclassed())
    assert PruneForLatencyOnXNNPack().allow_pruning(PruneLowMagnitude(keras.layers.Conv2D(2, 1)))
    assert not PruneForLatencyOnXNNPack().allow_pruning(keras.layers.Conv2D(2, 3))
    run_serialization_test(PruneForLatencyOnXNNPack())


def test_custom_policy():
    class DenseOnly(PruningPolicy):
        checked = []

        def allow_pruning(self, layer):
            return isinstance(layer, keras.layers.Dense)

        def ensure_model_supports_pruning(self, model):
            self.checked.append(model.name)

    policy = DenseOnly()
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 1), keras.layers.Flatten(), keras.layers.Dense(2)], name="m"
    )
    pruned = prune_low_magnitude(model, pruning_policy=policy)
    assert [type(layer).__name__ for layer in pruned.layers] == ["Conv2D", "Flatten", "PruneLowMagnitude"]
    assert policy.checked == ["m"]
    with pytest.raises(ValueError, match="must be a PruningPolicy"):
        prune_low_magnitude(model, pruning_policy="xnnpack")
    with pytest.raises(TypeError):
        PruningPolicy()
