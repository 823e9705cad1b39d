"""Tests for kopt.pruning.api: what prune_low_magnitude accepts and what pruning reaches."""

import os

import keras
import numpy as np
import pytest

from kopt.errors import ConfigError
from kopt.pruning import ConstantSparsity
from kopt.pruning import PolynomialDecay
from kopt.pruning import PruneForLatencyOnXNNPack
from kopt.pruning import PruneLowMagnitude
from kopt.pruning import UpdatePruningStep
from kopt.pruning import prune_low_magnitude
from kopt.pruning import strip_pruning


def _wrapped_names(model):
    return [layer.layer.name for layer in model.layers if isinstance(layer, PruneLowMagnitude)]


class _Scale(keras.layers.Layer):
    """A layer with a weight that kopt.pruning has no rule for."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


def _small_functional(norm=_Scale):
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(6, name="hidden")(inputs)
    normed = norm(name="norm")(hidden)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.ReLU()(normed)))


@pytest.mark.parametrize("norm", [keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.PReLU])
def test_normalization_layers_are_left_alone_without_a_warning(norm, recwarn):
    # Every real CNN has BatchNormalization; pruning leaves it alone by design, as tfmot does.
    pruned = prune_low_magnitude(_small_functional(norm))
    assert _wrapped_names(pruned) == ["hidden", "head"]
    assert not [w for w in recwarn if "unpruned" in str(w.message)], [str(w.message) for w in recwarn]


def test_layer_and_list():
    wrapped = prune_low_magnitude(keras.layers.Dense(3), name="custom")
    assert isinstance(wrapped, PruneLowMagnitude) and wrapped.name == "custom"
    input_layer = keras.layers.InputLayer(shape=(4,))
    dense = keras.layers.Dense(2)
    layers = prune_low_magnitude([input_layer, dense])
    assert layers[0] is input_layer and isinstance(layers[1], PruneLowMagnitude) and layers[1].layer is dense


def test_functional_model_is_copied_with_its_weights_and_unsupported_layers_warned():
    model = _small_functional()
    x = np.random.default_rng(0).normal(size=(3, 8)).astype("float32")
    with pytest.warns(UserWarning, match=r"left 1 layer\(s\).*norm \(_Scale\).*PrunableLayer"):
        pruned = prune_low_magnitude(model)
    assert _wrapped_names(pruned) == ["hidden", "head"]
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
    # A copy: no variable is shared with the original.
    original = {id(v.value) for v in model.weights}
    assert not original & {id(v.value) for v in pruned.weights}


def test_sequential_and_nested_models():
    inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(5, name="inner_dense")], name="inner")
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="outer_dense")(inner(inputs)))
    pruned = prune_low_magnitude(model)
    assert _wrapped_names(pruned) == ["outer_dense"]
    assert _wrapped_names(pruned.get_layer("inner")) == ["inner_dense"]
    sequential = prune_low_magnitude(
        keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Flatten()])
    )
    assert [type(layer).__name__ for layer in sequential.layers] == ["PruneLowMagnitude", "Flatten"]


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, inputs):
        return self.dense(inputs)


def test_subclassed_models_and_unsupported_single_layers_are_refused():
    with pytest.raises(ValueError, match="subclassed model.*Wrap its layers individually"):
        prune_low_magnitude(_Subclassed())
    inputs = keras.Input((3,))
    nested = keras.Model(inputs, _Subclassed()(inputs))
    with pytest.raises(ValueError, match="subclassed model"):
        prune_low_magnitude(nested)
    with pytest.raises(ValueError, match=r"'drop' of class Dropout.*PrunableLayer"):
        prune_low_magnitude(keras.layers.Dropout(0.1, name="drop"))
    with pytest.raises(ValueError, match="to_prune of type str"):
        prune_low_magnitude("model")
    with pytest.raises(ValueError, match="single layer only"):
        prune_low_magnitude(_small_functional(), name="x")
    with pytest.raises(ValueError, match="final_sparsity=1.2"):
        prune_low_magnitude(_small_functional(), pruning_schedule=PolynomialDecay(0.0, 1.2, 0, 10))
    with pytest.raises(ValueError, match="does not allow pruning layer"):
        prune_low_magnitude(keras.layers.Dense(2), pruning_policy=PruneForLatencyOnXNNPack())


def _all_kinds_model():
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    images = keras.Input((6, 6, 2), name="images")
    x = keras.layers.Embedding(20, 8, name="embedding")(tokens)
    x = keras.layers.LSTM(8, return_sequences=True, name="lstm")(x)
    x = keras.layers.MultiHeadAttention(2, 4, name="attention")(x, x)
    y = keras.layers.Conv2D(8, 3, name="conv")(images)
    y = keras.layers.DepthwiseConv2D(3, name="depthwise")(y)
    merged = keras.layers.Concatenate()([keras.layers.Flatten()(x), keras.layers.Flatten()(y)])
    return keras.Model([tokens, images], keras.layers.Dense(3, name="dense")(merged))


def _data(count, seed=0):
    rng = np.random.default_rng(seed)
    x = {"tokens": rng.integers(0, 20, (count, 6)), "images": rng.normal(size=(count, 6, 6, 2)).astype("float32")}
    return x, rng.normal(size=(count, 3)).astype("float32")


def _assert_exact_sparsity(model, target):
    stripped = strip_pruning(model)
    checked = 0
    for layer in stripped.layers:
        for weight in layer.weights:
            if weight.name in ("kernel", "recurrent_kernel", "embeddings"):
                values = keras.ops.convert_to_numpy(weight.value)
                zeros = int((values == 0).sum())
                assert abs(zeros - round(values.size * target)) <= 1, (weight.path, zeros, values.size)
                checked += 1
    # Embedding, 2 LSTM kernels, 4 attention kernels, conv, depthwise, dense.
    assert checked == 10


def test_exact_sparsity_per_layer_kind_and_zeros_stay_zero():
    keras.utils.set_random_seed(0)
    schedule = PolynomialDecay(0.0, 0.7, begin_step=0, end_step=5, frequency=2)
    # The depthwise layer is pruned only because it is named.
    model = prune_low_magnitude(_all_kinds_model(), pruning_schedule=schedule, layer_schedules={"depthwise": schedule})
    model.compile(keras.optimizers.Adam(0.01), "mse")
    x, y = _data(32)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
    _assert_exact_sparsity(model, 0.7)
    zero_pattern = [w == 0 for w in strip_pruning(model).get_weights()]
    # Adam keeps momentum on pruned entries, yet they stay zero after end_step.
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
    for before, after in zip(zero_pattern, strip_pruning(model).get_weights()):
        assert np.all(after[before] == 0)
    _assert_exact_sparsity(model, 0.7)


def test_a_whole_model_or_list_leaves_depthwise_kernels_dense_unless_named(monkeypatch):
    from kopt.pruning import api

    # Read through a patch: absl's verbosity depends on what ran before in the process.
    logged = []
    monkeypatch.setattr(api.logging, "info", lambda message, *args: logged.append(message % args))
    model = _all_kinds_model()
    pruned = prune_low_magnitude(model, pruning_schedule=ConstantSparsity(0.5, 0))
    assert "depthwise" not in _wrapped_names(pruned)
    assert {"conv", "dense", "lstm", "attention", "embedding"} <= set(_wrapped_names(pruned))
    assert [m for m in logged if "left 1 depthwise layer(s) dense (depthwise)" in m]
    listed = prune_low_magnitude([layer for layer in model.layers if layer.name in ("conv", "depthwise")])
    assert [type(layer).__name__ for layer in listed] == ["PruneLowMagnitude", "DepthwiseConv2D"]
    # Wrapped on its own, a depthwise layer is pruned like any other.
    single = prune_low_magnitude(keras.layers.DepthwiseConv2D(3))
    single.build((None, 6, 6, 2))
    assert [weight.name for weight in single.prunable_weights] == ["kernel"]


def test_save_mid_schedule_and_resume(tmp_path):
    keras.utils.set_random_seed(1)
    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=11, frequency=3)
    inputs = keras.Input((6, 6, 2))
    hidden = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, name="conv")(inputs))
    model = prune_low_magnitude(
        keras.Model(inputs, keras.layers.Dense(3, name="dense")(hidden)), pruning_schedule=schedule
    )
    model.compile(keras.optimizers.SGD(0.01), "mse")
    x = np.random.default_rng(2).normal(size=(24, 6, 6, 2)).astype("float32")
    y = np.random.default_rng(3).normal(size=(24, 3)).astype("float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[UpdatePruningStep()])  # steps 0..5
    path = os.path.join(tmp_path, "pruned.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects
    wrappers = [layer for layer in loaded.layers if isinstance(layer, PruneLowMagnitude)]
    assert [int(keras.ops.convert_to_numpy(w.pruning_step.value)) for w in wrappers] == [6, 6]
    assert isinstance(wrappers[0].pruning_schedule, PolynomialDecay)
    mid = 1 - keras.ops.convert_to_numpy(wrappers[1].masks[0].value).mean()
    assert 0.0 < mid < 0.8
    loaded.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[UpdatePruningStep()])  # steps 6..11
    assert [int(keras.ops.convert_to_numpy(w.pruning_step.value)) for w in wrappers] == [12, 12]
    for layer in strip_pruning(loaded).layers:
        if hasattr(layer, "kernel"):
            kernel = keras.ops.convert_to_numpy(layer.kernel.value)
            assert abs(int((kernel == 0).sum()) - round(kernel.size * 0.8)) <= 1


def test_default_schedule_is_constant_half_sparsity():
    wrapper = prune_low_magnitude(keras.layers.Dense(2))
    assert isinstance(wrapper.pruning_schedule, ConstantSparsity)
    assert wrapper.pruning_schedule.get_config() == ConstantSparsity(0.5, 0).get_config()


def test_public_names_exist_and_are_documented():
    import kopt.pruning

    for name in kopt.pruning.__all__:
        obj = getattr(kopt.pruning, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
    expected = {
        "prune_low_magnitude",
        "strip_pruning",
        "PruneLowMagnitude",
        "PruningSchedule",
        "ConstantSparsity",
        "PolynomialDecay",
        "UpdatePruningStep",
        "PruningSummaries",
        "PrunableLayer",
        "PruningPolicy",
        "PruneForLatencyOnXNNPack",
        "PruningStep",
        "schedules",
    }
    assert expected <= set(kopt.pruning.__all__)


def test_stateless_layers_such_as_python_lambdas_are_kept():
    inputs = keras.Input((4,))
    doubled = keras.layers.Lambda(lambda t: t * 2, name="double")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(doubled))
    pruned = prune_low_magnitude(model)  # Keras cannot rebuild this Lambda from its config
    assert [type(layer).__name__ for layer in pruned.layers] == ["InputLayer", "Lambda", "PruneLowMagnitude"]
    x = np.ones((1, 4), "float32")
    np.testing.assert_allclose(strip_pruning(pruned).predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def _two_dense():
    return keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, name="first"), keras.layers.Dense(4, name="second")]
    )


def test_layer_schedules_set_each_layer_and_leave_out_none():
    model = _two_dense()
    pruned = prune_low_magnitude(
        model,
        pruning_schedule=ConstantSparsity(0.5, 0),
        layer_schedules={"first": ConstantSparsity(0.75, 0), "second": None},
    )
    assert [type(layer).__name__ for layer in pruned.layers] == ["PruneLowMagnitude", "Dense"]
    pruned.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    pruned.fit(x, np.zeros((32, 4)), epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
    kernel = strip_pruning(pruned).get_layer("first").kernel.numpy()
    assert (kernel == 0).mean() == 0.75
    # Layers not named use pruning_schedule; a list takes per-layer schedules too.
    other = prune_low_magnitude(model, pruning_schedule=ConstantSparsity(0.5, 0), layer_schedules={"first": None})
    assert [type(layer).__name__ for layer in other.layers] == ["Dense", "PruneLowMagnitude"]
    assert other.layers[1].pruning_schedule.get_config()["target_sparsity"] == 0.5
    listed = prune_low_magnitude(list(model.layers), layer_schedules={"second": None})
    assert [type(layer).__name__ for layer in listed] == ["PruneLowMagnitude", "Dense"]


@pytest.mark.parametrize(
    "to_prune, layer_schedules, text",
    [
        ("model", {"missing": None}, "missing"),
        ("model", ["first"], "must be a dict"),
        ("layer", {"first": None}, "model or a list"),
        ("model", {"first": "no_such_schedule"}, "no_such_schedule"),
    ],
)
def test_bad_layer_schedules_are_refused(to_prune, layer_schedules, text):
    model = _two_dense()
    target = model if to_prune == "model" else model.layers[0]
    with pytest.raises(ValueError, match=text):
        prune_low_magnitude(target, layer_schedules=layer_schedules)


def test_random_criterion_reaches_the_sparsity_and_refuses_blocks():
    model = _two_dense()
    pruned = prune_low_magnitude(model, pruning_schedule=ConstantSparsity(0.5, 0), criterion="random")
    assert all(layer.criterion == "random" for layer in pruned.layers)
    with pytest.raises(ValueError, match="criterion='random'"):
        prune_low_magnitude(model, criterion="random", block_size=(2, 2))
    with pytest.raises(ValueError, match="criterion='size'"):
        prune_low_magnitude(model, criterion="size")


# --- Pruning something already pruned ------------------------------------------

_STRIP_FIRST = "call kopt.pruning.strip_pruning first to prune again with a new schedule"


def test_a_sequential_model_pruned_twice_is_refused_naming_the_layer():
    pruned = prune_low_magnitude(
        _two_dense(), pruning_schedule=ConstantSparsity(0.5, 0), layer_schedules={"second": None}
    )
    with pytest.raises(ConfigError) as caught:
        prune_low_magnitude(pruned, pruning_schedule=ConstantSparsity(0.9, 0))
    message = str(caught.value)
    assert message.startswith("to_prune=first: layer 'first' is already wrapped for pruning")
    assert "ConstantSparsity(target_sparsity=0.5" in message and _STRIP_FIRST in message
    assert "'second'" not in message  # left unpruned the first time
    assert isinstance(caught.value, ValueError) and caught.value.key == "to_prune"


def test_a_functional_model_pruned_twice_is_refused_naming_its_layers():
    with pytest.warns(UserWarning, match="norm"):
        pruned = prune_low_magnitude(_small_functional(), pruning_schedule=PolynomialDecay(0.0, 0.5, 0, 10))
    expected = (
        r"to_prune=hidden, head: layers 'hidden', 'head' are already wrapped for pruning in model 'functional\w*' "
        r"\(schedule PolynomialDecay\(initial_sparsity=0.0, final_sparsity=0.5,.*\); call kopt.pruning.strip_pruning"
    )
    with pytest.raises(ConfigError, match=expected):
        prune_low_magnitude(pruned)
    # Refused before anything else, even with settings that would be refused on their own.
    with pytest.raises(ConfigError, match="already wrapped"):
        prune_low_magnitude(pruned, layer_schedules={"missing": None})


def test_many_pruned_layers_are_named_up_to_three_and_nested_models_are_searched():
    layers = [keras.layers.Dense(4, name=f"d{index}") for index in range(5)]
    pruned = prune_low_magnitude(keras.Sequential([keras.Input((4,)), *layers]))
    with pytest.raises(ConfigError, match=r"to_prune=d0, d1, d2 and 2 more: layers 'd0', 'd1', 'd2' and 2 more are"):
        prune_low_magnitude(pruned)
    mixed = prune_low_magnitude(
        _two_dense(), pruning_schedule=ConstantSparsity(0.6, 0), layer_schedules={"first": ConstantSparsity(0.2, 0)}
    )
    expected = r"'first' \(schedule ConstantSparsity\(target_sparsity=0.2,.*'second' \(schedule .*=0.6,.*own schedule"
    with pytest.raises(ConfigError, match=expected):
        prune_low_magnitude(mixed)
    inner = prune_low_magnitude(
        keras.Sequential([keras.Input((8,)), keras.layers.Dense(5, name="inner_dense")], name="inner")
    )
    inputs = keras.Input((8,))
    outer = keras.Model(inputs, keras.layers.Dense(2, name="outer_dense")(inner(inputs)), name="outer")
    with pytest.raises(ConfigError, match=r"to_prune=inner_dense: layer 'inner_dense' is already wrapped.* 'outer'"):
        prune_low_magnitude(outer)


def test_an_already_wrapped_layer_or_list_is_refused():
    wrapped = prune_low_magnitude(keras.layers.Dense(3, name="conv1"), pruning_schedule=ConstantSparsity(0.3, 0))
    expected = r"to_prune=conv1: layer 'conv1' is already wrapped.*=0\.3,.*`wrapper\.layer`"
    with pytest.raises(ConfigError, match=expected):
        prune_low_magnitude(wrapped, pruning_schedule=ConstantSparsity(0.8, 0))
    with pytest.raises(ConfigError, match=r"to_prune=conv1: layer 'conv1' is already wrapped"):
        prune_low_magnitude([keras.layers.Dense(2), wrapped])
    again = prune_low_magnitude(wrapped.layer, pruning_schedule=ConstantSparsity(0.8, 0))
    assert again.pruning_schedule.get_config()["target_sparsity"] == 0.8


def test_pruning_again_after_strip_pruning_takes_the_new_schedule():
    model = _two_dense()
    pruned = prune_low_magnitude(model, pruning_schedule=ConstantSparsity(0.5, 0))
    pruned.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(16, 8)).astype("float32")
    pruned.fit(x, np.zeros((16, 4)), epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
    again = prune_low_magnitude(strip_pruning(pruned), pruning_schedule=ConstantSparsity(0.75, 0))
    assert _wrapped_names(again) == ["first", "second"]
    assert [layer.pruning_schedule.get_config()["target_sparsity"] for layer in again.layers] == [0.75, 0.75]
    again.compile("sgd", "mse")
    again.fit(x, np.zeros((16, 4)), epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
    assert (strip_pruning(again).get_layer("first").kernel.numpy() == 0).mean() == 0.75
