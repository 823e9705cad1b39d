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
