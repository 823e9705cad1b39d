"""Walking a Keras model's layers: the one walker kopt and tflite_export share.

Two views of a model whose layers may be models themselves (a Keras application's
blocks, a Sequential stem):

* :func:`all_layers`: every layer, nested models included as layers too, each
  followed by its own layers;
* :func:`leaf_layers`: only the layers that are not models, i.e. what computes.

A wrapper (pruning, clustering or quantization) is one layer in both views; what
it wraps is its ``layer`` attribute.

Example:

>>> import keras
>>> block = keras.Sequential([keras.layers.Dense(3, name="inner")], name="block")
>>> model = keras.Sequential([keras.Input((2,)), block, keras.layers.Dense(1, name="head")])
>>> [layer.name for layer in all_layers(model)], [layer.name for layer in leaf_layers(model)]
(['block', 'inner', 'head'], ['inner', 'head'])
"""

import keras

__all__ = ["all_layers", "leaf_layers"]


def all_layers(model):
    """Every layer of ``model``; a nested model comes before its own layers."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def leaf_layers(model_or_layers):
    """The layers of ``model_or_layers`` (a model or a list of layers) that are not models, nested ones entered."""
    layers = model_or_layers.layers if isinstance(model_or_layers, keras.Model) else model_or_layers
    for layer in layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer
