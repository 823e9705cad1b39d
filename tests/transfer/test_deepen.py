"""deepen (Net2DeeperNet): an identity layer in, the same outputs, clear refusals."""

import keras
import numpy as np
import pytest

from kopt.transfer import deepen
from kopt.transfer import widen
from tests.transfer.test_widen import _inputs
from tests.transfer.test_widen import _randomize
from tests.transfer.test_widen import _same_outputs


def _cnn():
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(max_value=6.0, name="relu6")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(10, activation="sigmoid", name="dense")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return _randomize(keras.Model(inputs, outputs, name="cnn"))


@pytest.mark.parametrize(
    "after, activation, kind",
    [
        ("conv1", None, "Conv2D"),  # ends in relu: a relu identity conv
        ("conv2", None, "Conv2D"),  # linear, before the batch norm
        ("bn", None, "Conv2D"),  # a batch norm's outputs take any value: linear
        ("relu6", None, "Conv2D"),
        ("relu6", "relu", "Conv2D"),  # relu is the identity on [0, 6] too
        ("flatten", None, "Dense"),
        ("dense", "linear", "Dense"),
    ],
)
def test_the_deeper_model_computes_the_same(after, activation, kind):
    model = _cnn()
    deeper = deepen(model, after, activation=activation)
    new = deeper.get_layer(f"{after}_identity")
    assert type(new).__name__ == kind and len(deeper.layers) == len(model.layers) + 1
    expected = activation or {"conv1": "relu", "relu6": "relu6"}.get(after, "linear")
    assert new.get_config()["activation"] == expected
    _same_outputs(model, deeper)


def test_the_new_layer_is_read_by_every_reader_and_trains_away_from_identity():
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(inputs)
    first = keras.layers.Dense(2, name="first")(hidden)
    second = keras.layers.Dense(2, name="second")(hidden)
    model = _randomize(keras.Model(inputs, keras.layers.Add()([first, second])))
    model.compile(optimizer="sgd", loss="mse")
    deeper = deepen(model, "hidden", name="inserted")
    config = deeper.get_config()
    readers = [layer["name"] for layer in config["layers"] if "inserted" in str(layer["inbound_nodes"])]
    assert sorted(readers) == ["first", "second"]
    _same_outputs(model, deeper)
    assert deeper.compiled
    deeper.fit(_inputs(model), np.ones((16, 2)), epochs=2, verbose=0)
    assert not np.allclose(deeper.get_layer("inserted").kernel.numpy(), np.eye(4))


def test_sequential_stays_sequential_with_the_layer_in_place_and_kernel_size_5(tmp_path):
    model = _randomize(
        keras.Sequential(
            [
                keras.Input((6, 6, 2)),
                keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                keras.layers.GlobalAveragePooling2D(name="gap"),
                keras.layers.Dense(2, name="head"),
            ],
            name="seq",
        )  # fmt: skip
    )
    deeper = deepen(model, "conv", kernel_size=5)
    assert isinstance(deeper, keras.Sequential)
    assert [layer.name for layer in deeper.layers] == ["conv", "conv_identity", "gap", "head"]
    assert tuple(deeper.get_layer("conv_identity").kernel.shape) == (5, 5, 4, 4)
    _same_outputs(model, deeper)
    path = str(tmp_path / "deeper.keras")
    deeper.save(path)
    _same_outputs(model, keras.models.load_model(path))


def test_conv1d_deepens_on_a_sequence():
    model = _randomize(
        keras.Sequential(
            [keras.Input((7, 3)), keras.layers.Conv1D(4, 3, name="conv"), keras.layers.Flatten(), keras.layers.Dense(2)]
        )  # fmt: skip
    )
    deeper = deepen(model, "conv")
    assert type(deeper.get_layer("conv_identity")).__name__ == "Conv1D"
    _same_outputs(model, deeper)


def test_deepen_then_widen_the_new_layer_keeps_the_outputs():
    model = _cnn()
    grown = widen(deepen(model, "conv1"), "conv1_identity", 10, seed=4)
    assert grown.get_layer("conv1_identity").filters == 10
    _same_outputs(model, grown)


@pytest.mark.parametrize(
    "after, options, expected",
    [
        ("dense", {}, r"ends in activation 'sigmoid', which is not idempotent.*\['linear'\].*after_layer_name='dense'"),
        ("conv2", {"activation": "relu"}, r"'relu' is not the identity.*\['linear'\]. Received: activation='relu'"),
        ("conv1", {"activation": "relu6"}, r"'relu6' is not the identity.*\['linear', 'relu'\]"),
        ("conv1", {"activation": "tanh"}, "only with one of.*Received: activation='tanh'"),
        ("conv1", {"kernel_size": 4}, "kernel_size must be odd.*kernel_size=4"),
        ("conv1", {"kernel_size": 0}, "kernel_size=0"),
        ("conv1", {"name": "conv2"}, "name must be a layer name not already in model 'cnn'. Received: name='conv2'"),
        ("nope", {}, "after_layer_name must name a layer.*Received: after_layer_name='nope'"),
    ],
)
def test_bad_arguments_are_refused_naming_argument_and_value(after, options, expected):
    with pytest.raises(ValueError, match=expected):
        deepen(_cnn(), after, **options)


def test_a_shared_layer_and_a_subclassed_model_are_refused():
    inputs = keras.Input((4,))
    shared = keras.layers.Dense(4, name="shared")
    model = keras.Model(inputs, shared(shared(inputs)))
    with pytest.raises(ValueError, match="called 2 times"):
        deepen(model, "shared")

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="Cannot deepen the subclassed model"):
        deepen(Subclassed(), "x")


def test_a_sequential_with_a_python_lambda_deepens():
    model = _randomize(
        keras.Sequential(
            [
                keras.Input((6, 6, 2)),
                keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                keras.layers.Lambda(lambda t: keras.ops.mean(t, axis=(1, 2)), name="pool"),
                keras.layers.Dense(2, name="head"),
            ]
        )
    )
    deeper = deepen(model, "conv")
    assert [layer.name for layer in deeper.layers] == ["conv", "conv_identity", "pool", "head"]
    _same_outputs(model, deeper)
