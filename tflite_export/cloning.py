"""The one model-cloning walker the techniques share, and the layer copies it makes.

Pruning, clustering, quantization, the strip functions and float32 conversion all
rebuild a Sequential or functional model node by node with
:func:`clone_graph_model`. It treats every kind of node a Keras 3 graph holds:

* layers go to the caller's ``layer_fn`` (usually a :func:`copy_layer`, wrapped
  or not), so the new model never shares a variable with the one it came from;
* ``keras.ops`` operations that are not layers (``x + 3.0`` is an ``Add``
  operation node, ``keras.ops.relu6(x)`` a ``Relu6`` one) hold no weights and are
  reused as they are; their constant and keyword arguments are replayed by the
  node;
* nested Sequential and functional models are cloned the same way, recursively;
* a layer called at several places is cloned once and called at each place;
* input layers keep their names, whatever the structure of the inputs.
"""

import keras

__all__ = [
    "clone_graph_model", "copy_layer", "copy_model", "copy_unshared", "inline_nested_models", "require_graph_model",
]  # fmt: skip


def copy_layer(layer, weights=None):
    """Rebuilds ``layer`` from its config and gives it ``weights`` (default: its own).

    Args:
        layer: A Keras layer, or a ``keras.Operation`` that is not a layer.
        weights: NumPy arrays in ``layer.weights`` order, or ``None`` to copy the
            layer's current values.

    Returns:
        A new layer of the same class, built if ``layer`` was built; a built
        layer without any state (Flatten, Lambda...) and an operation that is
        not a layer are returned as they are.

    Raises:
        ValueError: If ``weights`` are given for an operation that is not a layer.

    Example:

    >>> import keras
    >>> dense = keras.layers.Dense(2)
    >>> dense.build((None, 3))
    >>> copy = copy_layer(dense)
    >>> copy is dense, tuple(copy.kernel.shape)
    (False, (3, 2))
    """
    if not isinstance(layer, keras.layers.Layer):
        if weights is not None:
            raise ValueError(
                f"Operation {layer.name!r} ({type(layer).__name__}) is not a layer and has no weights. "
                f"Received: {len(weights)} weight array(s)"
            )
        return layer
    if layer.built and not layer.variables and weights is None:
        # Nothing to copy, and Keras refuses to rebuild a Lambda holding a Python
        # lambda from its config.
        return layer
    clone = type(layer).from_config(layer.get_config())
    build_config = layer.get_build_config() if layer.built else None
    if build_config and not clone.built:
        clone.build_from_config(build_config)
    if layer.built:
        clone.set_weights(layer.get_weights() if weights is None else weights)
    return clone


def copy_unshared(layer, weights=None):
    """:func:`copy_layer`, recreating stateless layers too.

    A layer shared by two models has a node in each, so ``layer.output`` of the
    new model would silently give the original model's tensor. Quantization
    reads layers' outputs while it rewrites a model, so it copies every layer
    (but a ``Lambda``, which Keras cannot rebuild from its config, and operations
    that are not layers).

    Example:

    >>> import keras
    >>> flatten = keras.layers.Flatten()
    >>> flatten.build((None, 2, 2))
    >>> copy_unshared(flatten) is flatten
    False
    """
    copied = copy_layer(layer, weights=weights)
    if copied is layer and isinstance(layer, keras.layers.Layer) and not isinstance(layer, keras.layers.Lambda):
        copied = type(layer).from_config(layer.get_config())
    return copied


def clone_graph_model(model, layer_fn, *, action, advice, call_function=None):
    """Clones a Sequential or functional model node by node (see the module docstring).

    Args:
        model: The model to clone.
        layer_fn: Called once on each layer (not on input layers, nested
            Sequential/functional models, which are entered, or operations that
            are not layers, which are reused); returns its replacement.
        action: What the caller does (``"prune"``, ``"quantize"``...), for the error.
        advice: What to do instead with a subclassed model, for the error.
        call_function: ``fn(node, *args, **kwargs)`` calling each cloned layer or
            reused operation of a functional model on its new inputs (default:
            ``node(*args, **kwargs)``), as ``keras.models.clone_model`` takes it;
            it also applies inside nested functional models, not inside a
            Sequential one, whose layers are listed rather than called.

    Returns:
        The cloned model: Sequential for a Sequential model, functional
        otherwise, with the input names, input and output structure, and
        compile settings of ``model``.

    Raises:
        ValueError: If ``model`` or a nested model is subclassed, or
            ``call_function`` is given with a Sequential ``model``.

    Example:

    >>> import keras
    >>> inputs = keras.Input((2,), name="features")
    >>> model = keras.Model(inputs, keras.layers.Dense(1)(inputs + 3.0))
    >>> clone = clone_graph_model(model, copy_layer, action="copy", advice="")
    >>> [layer.name for layer in clone.layers][0], clone.layers[1] is model.layers[1]
    ('features', False)
    """
    if call_function is not None and isinstance(model, keras.Sequential):
        raise ValueError(
            f"call_function applies to a functional model; Sequential model {model.name!r} lists its layers "
            "instead of calling them. View it as keras.Model(model.inputs, model.outputs) first. "
            f"Received: call_function={call_function!r}"
        )
    return _clone(model, layer_fn, {}, action=action, advice=advice, call_function=call_function)


def _clone(model, layer_fn, clones, *, action, advice, call_function):
    require_graph_model(model, action=action, advice=advice)

    def clone_node(node):
        # Keras caches clones within one model; ``clones`` also covers a layer
        # shared between a model and the models nested in it.
        if id(node) not in clones:
            if isinstance(node, keras.Model):
                clones[id(node)] = _clone(
                    node, layer_fn, clones, action=action, advice=advice, call_function=call_function
                )
            elif isinstance(node, keras.layers.Layer):
                clones[id(node)] = layer_fn(node)
            else:
                clones[id(node)] = node
        return clones[id(node)]

    if isinstance(model, keras.Sequential):
        return keras.models.clone_model(model, clone_function=clone_node)
    return keras.models.clone_model(
        model, input_tensors=_named_inputs(model), clone_function=clone_node, call_function=call_function
    )


def copy_model(model):
    """A copy of a Sequential or functional ``model`` with its own variables holding the same values.

    Input names, nested models and compile settings are kept, as :func:`clone_graph_model` keeps them.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)])
    >>> copy = copy_model(model)
    >>> copy.layers[0] is model.layers[0], bool(np.all(copy.get_weights()[0] == model.get_weights()[0]))
    (False, True)
    """
    return clone_graph_model(model, copy_layer, action="copy", advice="Save and load it to copy it instead.")


def inline_nested_models(model, layer_fn=None, *, action, advice):
    """A flat functional copy of ``model``: nested Sequential/functional models' layers called directly.

    Keras applications such as ConvNeXt build their stem and downsampling blocks
    as small Sequential models; a technique that rewrites one flat graph (QAT's
    BatchNormalization folding and input quantizers) sees them only once their
    layers sit in the outer graph. Layer names are kept, so they must be unique
    across the nesting levels (Keras refuses the flat model otherwise).

    Args:
        model: A Sequential or functional model.
        layer_fn: As in :func:`clone_graph_model`; default :func:`copy_unshared`.
        action: What the caller does, for the error about a subclassed model.
        advice: What to do instead, for that error.

    Returns:
        A functional model without nested models, computing the same function.

    Example:

    >>> import keras
    >>> inner = keras.Sequential([keras.layers.Dense(3, name="d1"), keras.layers.ReLU(name="r1")], name="block")
    >>> inputs = keras.Input((2,))
    >>> model = keras.Model(inputs, keras.layers.Dense(1, name="out")(inner(inputs)))
    >>> [layer.name for layer in inline_nested_models(model, action="copy", advice="").layers][1:]
    ['d1', 'r1', 'out']
    """
    layer_fn = layer_fn or copy_unshared
    if isinstance(model, keras.Sequential):
        model = keras.Model(model.inputs, model.outputs, name=model.name)

    def call(node, *args, **kwargs):
        if isinstance(node, keras.Sequential):
            outputs = args[0]
            for layer in node.layers:
                outputs = call(layer, outputs)
            return outputs
        if isinstance(node, keras.Model):
            # The nested model's graph, run on the outer tensors with its own (cloned)
            # layers. keras.models.clone_model would start the copy from new Input
            # layers instead of the outer tensors, so the graph is walked directly.
            return node._run_through_graph(args[0], operation_fn=lambda operation: operation, call_fn=call)
        return node(*args, **kwargs)

    return clone_graph_model(model, layer_fn, action=action, advice=advice, call_function=call)


def _named_inputs(model):
    # keras.models.clone_model names a new input after the tensor
    # (``keras_tensor_3``), not after its InputLayer (``input_layer``).
    names = {id(layer.output): layer.name for layer in model.layers if isinstance(layer, keras.layers.InputLayer)}

    def new_input(tensor):
        name = names.get(id(tensor), tensor.name)
        return keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, sparse=tensor.sparse, name=name)

    return keras.tree.map_structure(new_input, model.input)


def require_graph_model(model, *, action, advice):
    """Raises ``ValueError`` unless ``model`` is Sequential or functional."""
    if isinstance(model, (keras.Sequential, keras.Function)):
        return
    raise ValueError(
        f"Cannot {action} the subclassed model {model.name!r} ({type(model).__name__}): its layers "
        f"and their connections are only known to its Python code, so it cannot be cloned. {advice}"
    )
