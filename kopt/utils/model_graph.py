"""Reading a functional model's connections from its public config.

``keras.Model.get_config()`` lists, for each layer, the calls ("inbound nodes")
that produced its outputs, with each input tensor named by ``keras_history``:
``(layer name, node index, tensor index)``. These helpers turn that into the
references and consumer lists that graph transforms need, without private Keras
attributes.
"""

import collections

__all__ = ["OUTPUT", "consumers", "inbound_layers", "output_refs", "tensor_refs"]

OUTPUT = "<model output>"


def tensor_refs(structure):
    """``[((layer, node, tensor), shape), ...]`` of the Keras tensors in a config structure.

    Example:

    >>> ref = {"class_name": "__keras_tensor__", "config": {"keras_history": ["conv", 0, 0], "shape": [None, 4]}}
    >>> tensor_refs({"args": [ref], "kwargs": {}})
    [(('conv', 0, 0), [None, 4])]
    """
    if isinstance(structure, dict):
        if structure.get("class_name") == "__keras_tensor__":
            config = structure["config"]
            return [(tuple(config["keras_history"]), config["shape"])]
        return [ref for value in structure.values() for ref in tensor_refs(value)]
    if isinstance(structure, (list, tuple)):
        return [ref for value in structure for ref in tensor_refs(value)]
    return []


def output_refs(structure):
    """``[(layer, node, tensor), ...]`` from ``output_layers``, whatever its nesting (list or dict)."""
    if isinstance(structure, (list, tuple)) and len(structure) == 3 and isinstance(structure[0], str):
        return [tuple(structure)]
    values = structure.values() if isinstance(structure, dict) else structure
    return [ref for value in values for ref in output_refs(value)]


def inbound_layers(model_config):
    """``{layer name: [[input layer names of call 0], [... of call 1], ...]}``."""
    return {
        layer["name"]: [[ref[0][0] for ref in tensor_refs(node)] for node in layer.get("inbound_nodes") or []]
        for layer in model_config["layers"]
    }


def consumers(model):
    """``{layer name: [names of the layers reading its outputs]}`` of a functional model.

    A layer read by several calls appears once per call; :data:`OUTPUT` stands for
    the model's outputs.

    Example:

    >>> import keras
    >>> inputs = keras.Input((3,))
    >>> hidden = keras.layers.Dense(2, name="hidden")(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(1, name="head")(hidden))
    >>> consumers(model)["hidden"], consumers(model)["head"]
    (['head'], ['<model output>'])
    """
    config = model.get_config()
    readers = collections.defaultdict(list)
    for name, calls in inbound_layers(config).items():
        for inputs in calls:
            for producer in inputs:
                readers[producer].append(name)
    for producer, _, _ in output_refs(config["output_layers"]):
        readers[producer].append(OUTPUT)
    return {layer["name"]: readers.get(layer["name"], []) for layer in config["layers"]}
