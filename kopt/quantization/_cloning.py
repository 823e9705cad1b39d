"""Cloning helpers for quantize_apply and strip_quantization.

``kopt.utils.cloning.copy_layer`` returns a built layer without variables
(Flatten, MaxPooling2D...) as is, and ``keras.models.clone_model`` names a
cloned input layer after its tensor (``keras_tensor_3``) rather than after the
layer (``input_layer``). A quantized or stripped model should be a model of its
own with the original's names, so both are handled here.
"""

import keras

from kopt.utils.cloning import copy_layer

__all__ = ["clone_model", "copy_unshared"]


def copy_unshared(layer, weights=None):
    """``copy_layer``, recreating stateless layers too.

    A layer shared by two models has several inbound nodes, so ``layer.output``
    of the new model would silently give the original model's tensor.

    Example:

    >>> import keras
    >>> flatten = keras.layers.Flatten()
    >>> flatten.build((None, 2, 2))
    >>> copy_unshared(flatten) is flatten
    False
    """
    copied = copy_layer(layer, weights=weights)
    # Keras refuses to rebuild a Lambda holding a Python lambda from its config.
    if copied is layer and not isinstance(layer, keras.layers.Lambda):
        copied = type(layer).from_config(layer.get_config())
    return copied


def clone_model(model, clone_function, call_function=None):
    """``keras.models.clone_model`` of a functional model, keeping input layer names.

    Example:

    >>> import keras
    >>> inputs = keras.Input((2,), name="features")
    >>> model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    >>> clone_model(model, lambda layer: layer).layers[0].name
    'features'
    """
    names = {id(layer.output): layer.name for layer in model.layers if isinstance(layer, keras.layers.InputLayer)}

    def new_input(tensor):
        name = names.get(id(tensor), tensor.name)
        return keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, sparse=tensor.sparse, name=name)

    input_tensors = keras.tree.map_structure(new_input, model.input)
    return keras.models.clone_model(
        model, input_tensors=input_tensors, clone_function=clone_function, call_function=call_function
    )
