"""widen (Net2WiderNet): wider layers, the same outputs, clear refusals."""

import keras
import numpy as np
import pytest

from kopt.transfer import widen
from kopt.transfer.net2net import replication_map


def _randomize(model, seed=0):
    """Random weights everywhere (positive variances), so equal outputs are not an accident of zeros or ones."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.normal(0.0, 0.5, variable.shape).astype("float32")
        if "variance" in variable.name:
            value = np.abs(value) + 0.5
        variable.assign(value)
    return model


def _inputs(model, count=16, seed=1):
    shape = (count, *model.inputs[0].shape[1:])
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _same_outputs(original, other):
    x = _inputs(original)
    expected, received = original.predict(x, verbose=0), other.predict(x, verbose=0)
    assert np.abs(expected).max() > 1e-2  # a test of equal outputs needs outputs that are not all zero
    np.testing.assert_allclose(received, expected, atol=1e-5, rtol=1e-5)


def _cnn():
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.Dropout(0.3, name="drop")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(12, activation="gelu", name="dense")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return _randomize(keras.Model(inputs, outputs, name="cnn"))


@pytest.mark.parametrize("layer_name, new_units", [("conv1", 11), ("conv2", 16), ("dense", 13)])
def test_widened_cnn_with_batch_norm_and_flatten_computes_the_same(layer_name, new_units):
    model = _cnn()
    wider = widen(model, layer_name, new_units, seed=3)
    assert wider.get_layer(layer_name).get_config()["units" if layer_name == "dense" else "filters"] == new_units
    assert wider.count_params() > model.count_params()
    _same_outputs(model, wider)


def test_the_new_units_copy_the_units_the_seeded_map_names_and_readers_divide():
    model = _cnn()
    wider = widen(model, "dense", 13, seed=3)
    mapping = replication_map(12, 13, rng=np.random.default_rng(3))
    old_kernel, new_kernel = model.get_layer("dense").kernel.numpy(), wider.get_layer("dense").kernel.numpy()
    np.testing.assert_array_equal(new_kernel, old_kernel[:, mapping])
    copied = mapping[12]
    old_rows, new_rows = model.get_layer("logits").kernel.numpy(), wider.get_layer("logits").kernel.numpy()
    np.testing.assert_allclose(new_rows[copied], old_rows[copied] / 2)
    np.testing.assert_allclose(new_rows[12], old_rows[copied] / 2)


def test_batch_norm_statistics_are_copied_with_their_channels():
    model = _cnn()
    wider = widen(model, "conv1", 9, seed=0)
    mapping = replication_map(6, 9, rng=np.random.default_rng(0))
    for name in ("gamma", "beta", "moving_mean", "moving_variance"):
        old = getattr(model.get_layer("bn1"), name).numpy()
        np.testing.assert_array_equal(getattr(wider.get_layer("bn1"), name).numpy(), old[mapping])


def test_the_original_model_is_left_alone():
    model = _cnn()
    before = [w.copy() for w in model.get_weights()]
    widen(model, "conv2", 12)
    assert model.get_layer("conv2").filters == 8
    for old, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, now)


def test_sequential_stays_sequential_and_compiled_and_trains():
    model = _randomize(
        keras.Sequential(
            [
                keras.Input((5,)),
                keras.layers.Dense(4, activation="relu", name="hidden"),
                keras.layers.Dense(2, name="head"),
            ]
        )  # fmt: skip
    )
    model.compile(optimizer="adam", loss="mse")
    wider = widen(model, "hidden", 9)
    assert isinstance(wider, keras.Sequential) and wider.compiled
    _same_outputs(model, wider)
    history = wider.fit(_inputs(model), np.zeros((16, 2)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_depthwise_concat_separable_pooling_and_ops_pass_the_channels_on():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.ops.relu(x) * 2.0
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise")(x)
    x = keras.layers.Concatenate(name="concat")([x, inputs])
    x = keras.layers.SeparableConv2D(5, 3, depth_multiplier=2, name="separable")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = _randomize(keras.Model(inputs, keras.layers.Dense(2, name="head")(x)))
    wider = widen(model, "conv", 7, seed=5)
    assert tuple(wider.get_layer("depthwise").kernel.shape) == (3, 3, 7, 2)
    _same_outputs(model, wider)


@pytest.mark.parametrize("rank", [1, 3])
def test_conv1d_and_conv3d_widen_too(rank):
    convolution = {1: keras.layers.Conv1D, 3: keras.layers.Conv3D}[rank]
    inputs = keras.Input((4,) * rank + (2,))
    x = convolution(3, 3, padding="same", activation="relu", name="conv")(inputs)
    x = convolution(2, 3, name="reader")(x)
    model = _randomize(keras.Model(inputs, keras.layers.Flatten()(x)))
    _same_outputs(model, widen(model, "conv", 5))


@pytest.mark.parametrize("shared_axes", [None, [1, 2], [1, 2, 3]])
def test_prelu_slopes_are_copied_with_their_channels(shared_axes):
    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    x = keras.layers.PReLU(shared_axes=shared_axes, name="prelu")(x)
    model = _randomize(keras.Model(inputs, keras.layers.Flatten()(keras.layers.Conv2D(2, 1, name="reader")(x))))
    wider = widen(model, "conv", 7)
    assert wider.get_layer("prelu").alpha.shape[-1] == (1 if shared_axes == [1, 2, 3] else 7)
    _same_outputs(model, wider)


def test_one_layer_feeding_two_readers_divides_both():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, activation="tanh", name="hidden")(inputs)
    first = keras.layers.Dense(2, name="first")(hidden)
    second = keras.layers.Dense(2, name="second")(hidden)
    model = _randomize(keras.Model(inputs, [first, second]))
    wider = widen(model, "hidden", 8)
    x = _inputs(model)
    for expected, received in zip(model.predict(x, verbose=0), wider.predict(x, verbose=0)):
        np.testing.assert_allclose(received, expected, atol=1e-5)


def test_noise_breaks_symmetry_but_keeps_outputs_close_and_seeds_repeat():
    model = _cnn()
    noisy = widen(model, "dense", 20, seed=1, noise_stddev=0.01)
    again = widen(model, "dense", 20, seed=1, noise_stddev=0.01)
    other = widen(model, "dense", 20, seed=2)
    kernel = noisy.get_layer("dense").kernel.numpy()
    mapping = replication_map(12, 20, rng=np.random.default_rng(1))
    assert not np.allclose(kernel[:, 12:], kernel[:, mapping[12:]])
    np.testing.assert_array_equal(kernel, again.get_layer("dense").kernel.numpy())
    assert not np.array_equal(other.get_layer("dense").kernel.numpy()[:, 12:], kernel[:, 12:])
    x = _inputs(model)
    expected = model.predict(x, verbose=0)
    assert np.abs(noisy.predict(x, verbose=0) - expected).max() < 0.1 * np.abs(expected).max()


def test_a_widened_model_saves_and_loads_without_custom_objects(tmp_path):
    model = _cnn()
    wider = widen(model, "conv2", 10)
    path = str(tmp_path / "wider.keras")
    wider.save(path)
    _same_outputs(model, keras.models.load_model(path))


def _residual():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(4, 1, name="stem")(inputs)
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="branch")(x)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x))


def _merged_with_input():
    inputs = keras.Input((4, 4, 3))
    y = keras.layers.Conv2D(3, 3, padding="same", name="branch")(inputs)
    x = keras.layers.Add(name="add")([inputs, y])
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


def _merged_with_separable():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(4, 1, name="conv")(inputs)
    y = keras.layers.SeparableConv2D(4, 3, padding="same", name="separable")(inputs)
    x = keras.layers.Add(name="add")([x, y])
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


@pytest.mark.parametrize("layer_name", ["stem", "branch"])
def test_a_residual_stream_widens_every_layer_adding_to_it_with_one_map(layer_name):
    """Naming either side of ``x + branch(x)`` widens both; branch reads the stream it adds to, so its
    rows are divided and its columns copied."""
    model = _randomize(_residual())
    wider = widen(model, layer_name, 7, seed=2)
    assert wider.get_layer("stem").filters == 7 and wider.get_layer("branch").filters == 7
    mapping = replication_map(4, 7, rng=np.random.default_rng(2))
    counts = np.bincount(mapping, minlength=4)
    old_branch, new_branch = model.get_layer("branch").kernel.numpy(), wider.get_layer("branch").kernel.numpy()
    expected = old_branch[:, :, mapping, :][..., mapping] / counts[mapping][:, None]
    np.testing.assert_allclose(new_branch, expected, rtol=1e-6)
    np.testing.assert_array_equal(
        wider.get_layer("stem").kernel.numpy(), model.get_layer("stem").kernel.numpy()[..., mapping]
    )
    _same_outputs(model, wider)


def _squeeze_excite():
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(6, 1, name="expand")(inputs)
    x = keras.layers.BatchNormalization(name="expand_bn")(x)
    x = keras.layers.Activation("swish", name="expand_act")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    gate = keras.layers.GlobalAveragePooling2D(name="squeeze")(x)
    gate = keras.layers.Reshape((1, 1, 6), name="se_reshape")(gate)
    gate = keras.layers.Conv2D(2, 1, activation="swish", name="se_reduce")(gate)
    gate = keras.layers.Conv2D(6, 1, activation="sigmoid", name="se_expand")(gate)
    x = keras.layers.Multiply(name="excite")([x, gate])
    x = keras.layers.Conv2D(4, 1, name="project")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(x)))


def test_a_squeeze_excite_block_widens_its_gate_and_reshape_with_it(tmp_path):
    """EfficientNet's gate multiplies the expanded channels: the gate's producer copies the same channels
    (no division: a product, not a sum), the (1, 1, C) Reshape follows, the squeeze's reader divides."""
    model = _randomize(_squeeze_excite())
    wider = widen(model, "expand", 10, seed=1)
    assert wider.get_layer("se_expand").filters == 10
    assert tuple(wider.get_layer("se_reshape").get_config()["target_shape"]) == (1, 1, 10)
    assert tuple(wider.get_layer("se_reduce").kernel.shape) == (1, 1, 10, 2)
    _same_outputs(model, wider)
    path = str(tmp_path / "wider.keras")
    wider.save(path)
    _same_outputs(model, keras.models.load_model(path))


class _Doubled(keras.layers.Layer):
    """A layer of the user's own: what it does to channels is unknown."""

    def call(self, x):
        return 2.0 * x


def _reaching(layer):
    inputs = keras.Input((6,))
    x = keras.layers.Dense(4, name="hidden")(inputs)
    return keras.Model(inputs, layer(x))


@pytest.mark.parametrize(
    "build, layer_name, new_units, expected",
    [
        (_merged_with_input, "branch", 8, "added by 'add' to channels that cannot be removed"),
        (_merged_with_separable, "conv", 8, r"meets the output of layer 'separable' \(SeparableConv2D\) in \['add'\]"),
        (_residual, "head", 4, "model output"),
        (_residual, "stem", 4, "new_units must be an integer above the 4 filters of layer 'stem'.*new_units=4"),
        (_residual, "stem", 2.5, "Received: new_units=2.5"),
        (
            _residual,
            "nope",
            8,
            r"its Dense/Conv1D/Conv2D/Conv3D/LSTM/GRU/SimpleRNN/Bidirectional layers are \['stem', 'branch', 'head'\]",
        ),
        (_residual, "add", 8, "layer 'add' is a Add"),
        (lambda: _reaching(keras.layers.LayerNormalization(name="norm")), "hidden", 8, "'norm'.*mixes channels"),
        (lambda: _reaching(_Doubled(name="doubled")), "hidden", 8, "layer 'doubled' \\(_Doubled\\) reads"),
    ],
)
def test_what_cannot_be_widened_is_refused_naming_layer_and_value(build, layer_name, new_units, expected):
    with pytest.raises(ValueError, match=expected):
        widen(build(), layer_name, new_units)


def test_a_transposed_convolution_reading_the_channels_is_refused_by_name():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2DTranspose(2, 2, strides=2, name="up")(x))
    with pytest.raises(ValueError, match=r"transposed convolution\(s\) \['up'\] read its channels.*layer_name='conv'"):
        widen(model, "conv", 6)


def test_an_activation_across_channels_and_a_shared_layer_are_refused():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(4, activation="softmax", name="soft")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ValueError, match="applies activation 'softmax' across channels"):
        widen(model, "soft", 8)
    shared = keras.layers.Dense(6, name="shared")
    model = keras.Model(inputs, keras.layers.Dense(2)(shared(shared(inputs))))
    with pytest.raises(ValueError, match="called more than once"):
        widen(model, "shared", 8)


def test_bad_noise_a_subclassed_model_and_wrappers_are_refused():
    model = _cnn()
    with pytest.raises(ValueError, match="noise_stddev=-0.1"):
        widen(model, "conv1", 8, noise_stddev=-0.1)

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="Cannot widen the subclassed model"):
        widen(Subclassed(), "conv1", 8)
    from kopt.pruning import prune_low_magnitude

    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="hidden"), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="plain layers"):
        widen(prune_low_magnitude(dense), "hidden", 8)


@pytest.mark.parametrize(
    "layer_class, options",
    [
        (keras.layers.LSTM, {}),
        (keras.layers.GRU, {}),
        (keras.layers.GRU, {"reset_after": False}),
        (keras.layers.SimpleRNN, {"go_backwards": True}),
    ],
    ids=["LSTM", "GRU", "GRU-reset_before", "SimpleRNN"],
)
@pytest.mark.parametrize("layer_name", ["embed", "rnn1", "rnn2"])
def test_recurrent_layers_widen_in_every_gate_and_read_wider_inputs(layer_class, options, layer_name):
    """A recurrent unit's copies keep the same state: every gate's column is copied and the recurrent
    kernel's rows divided, as any reader's; a recurrent layer reading widened channels divides its rows."""
    inputs = keras.Input((7, 5))
    x = keras.layers.Dense(6, activation="relu", name="embed")(inputs)
    x = layer_class(8, return_sequences=True, name="rnn1", **options)(x)
    x = layer_class(4, name="rnn2", **options)(x)
    model = _randomize(keras.Model(inputs, keras.layers.Dense(3, name="head")(x)))
    new_units = {"embed": 9, "rnn1": 13, "rnn2": 7}[layer_name]
    wider = widen(model, layer_name, new_units, seed=3)
    assert wider.get_layer(layer_name).units == new_units
    _same_outputs(model, wider)
    if layer_name == "rnn1":
        gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[layer_class.__name__]
        assert tuple(wider.get_layer("rnn1").cell.recurrent_kernel.shape) == (13, 13 * gates)
        assert tuple(wider.get_layer("rnn2").cell.kernel.shape) == (13, 4 * gates)


def test_a_recurrent_layer_returning_its_state_is_refused_by_name():
    inputs = keras.Input((7, 5))
    sequence, state_h, _ = keras.layers.LSTM(8, return_state=True, name="lstm")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Concatenate()([sequence, state_h])))
    with pytest.raises(ValueError, match="Cannot widen layer 'lstm' \\(LSTM\\): it returns its state or is stateful"):
        widen(model, "lstm", 12)


def test_a_keras_wrapper_on_the_way_is_refused_by_name_not_called_a_kopt_wrapper():
    inputs = keras.Input((7, 5))
    x = keras.layers.Dense(6, name="dense")(inputs)
    x = keras.layers.TimeDistributed(keras.layers.Dense(4), name="per_step")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    with pytest.raises(ValueError, match=r"through wrapper layers; layer 'per_step' is a TimeDistributed"):
        widen(model, "dense", 8)
