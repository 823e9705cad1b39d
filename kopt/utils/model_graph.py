"""Reading a functional model's connections from its public config.

``keras.Model.get_config()`` lists, for each layer, the calls ("inbound nodes")
that produced its outputs, with each input tensor named by ``keras_history``:
``(layer name, node index, tensor index)``. These helpers turn that into the
references and consumer lists that graph transforms need, without private Keras
attributes.
"""

import collections

import keras

__all__ = ["OUTPUT", "consumers", "inbound_layers", "model_from_own_config", "output_refs", "tensor_refs"]

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


def model_from_own_config(model, config):
    """A new model of ``model``'s class built from ``config``, an edited ``model.get_config()``.

    Keras rebuilds a ``Lambda`` holding a Python lambda from its bytecode, and
    refuses to by default, since a file's bytecode may not be trusted; rebuilt so,
    the function also loses the globals it reads (``keras`` itself). This config
    was read from ``model``, a live object, so each ``Lambda`` gets the very
    function object it holds, and a lambda given as its ``output_shape`` is
    rebuilt from the bytecode just read (``safe_mode=False`` for this call only;
    files are still loaded safely everywhere else).

    Example:

    >>> inputs = keras.Input((2,))
    >>> model = keras.Model(inputs, keras.layers.Lambda(lambda t: keras.ops.exp(t), name="exp")(inputs))
    >>> float(model_from_own_config(model, model.get_config())(keras.ops.zeros((1, 2)))[0, 0])
    1.0
    """
    functions, layers = {}, []
    for entry in config.get("layers", []):
        if entry.get("class_name") == "Lambda" and entry.get("module") == "keras.layers":
            name = entry["config"]["name"]
            token = f"__kopt_function_of_{name}"
            functions[token] = model.get_layer(name).function
            entry = {**entry, "config": {**entry["config"], "function": token}}
        layers.append(entry)
    config = {**config, "layers": layers}
    serialized = keras.saving.serialize_keras_object(model)  # its class, as Keras names it
    serialized = {key: serialized[key] for key in ("module", "class_name", "registered_name")}
    # Passed as an argument, not as a scope: Keras adds them to the caller's custom objects.
    return keras.saving.deserialize_keras_object(
        {**serialized, "config": config}, custom_objects=functions, safe_mode=False
    )
