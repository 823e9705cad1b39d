import keras

from kopt.utils import model_graph


def _branching_model():
    inputs = keras.Input((4,), name="x")
    a = keras.layers.Dense(3, name="a")(inputs)
    b = keras.layers.Dense(3, name="b")(a)
    c = keras.layers.Dense(3, name="c")(a)
    added = keras.layers.Add(name="add")([b, c])
    return keras.Model(inputs, [added, c])


def test_consumers_lists_every_reader_and_model_outputs():
    readers = model_graph.consumers(_branching_model())
    assert sorted(readers["a"]) == ["b", "c"]
    assert sorted(readers["c"]) == [model_graph.OUTPUT, "add"]
    assert readers["add"] == [model_graph.OUTPUT]
    assert readers["x"] == ["a"]


def test_inbound_layers_per_call():
    calls = model_graph.inbound_layers(_branching_model().get_config())
    assert calls["add"] == [["b", "c"]]
    assert calls["x"] == []


def test_shared_layer_is_read_once_per_call():
    inputs = keras.Input((3,))
    shared = keras.layers.Dense(3, name="shared")
    outputs = keras.layers.Dense(1, name="head")(shared(shared(inputs)))
    readers = model_graph.consumers(keras.Model(inputs, outputs))
    assert sorted(readers["shared"]) == ["head", "shared"]
    assert len(model_graph.inbound_layers(keras.Model(inputs, outputs).get_config())["shared"]) == 2


def test_output_refs_handles_dict_outputs():
    assert model_graph.output_refs({"y": ["head", 0, 0], "z": ["aux", 0, 0]}) == [("head", 0, 0), ("aux", 0, 0)]


def _with_lambdas():
    """A Lambda reading a module global (``keras``) and a closure: bytecode rebuilt, neither would resolve."""
    offset = 0.5
    inputs = keras.Input((3,))
    x = keras.layers.Dense(3, name="dense")(inputs)
    x = keras.layers.Lambda(lambda t: keras.ops.exp(t) + offset, name="exp")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x))


def test_model_from_own_config_keeps_each_lambdas_function_and_the_config_unchanged():
    import numpy as np

    model = _with_lambdas()
    config = model.get_config()
    before = repr(config)
    rebuilt = model_graph.model_from_own_config(model, config)
    assert repr(config) == before  # the caller's config is not edited
    assert rebuilt.get_layer("exp").function is model.get_layer("exp").function
    rebuilt.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(rebuilt(x), model(x), atol=1e-6)
    sequential = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda t: t * 3.0, name="triple")])
    rebuilt = model_graph.model_from_own_config(sequential, sequential.get_config())
    assert isinstance(rebuilt, keras.Sequential) and float(rebuilt(np.ones((1, 2), "float32"))[0, 0]) == 3.0
