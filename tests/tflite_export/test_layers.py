"""Tests for tflite_export.layers: the shared layer walkers."""

import keras

from tflite_export.layers import all_layers
from tflite_export.layers import leaf_layers


def _nested():
    inner = keras.Sequential([keras.layers.Dense(3, name="a"), keras.layers.ReLU(name="b")], name="inner")
    outer_block = keras.Sequential([inner, keras.layers.Dense(2, name="c")], name="outer_block")
    return keras.Sequential([keras.Input((4,)), outer_block, keras.layers.Dense(1, name="d")])


def test_all_layers_lists_nested_models_before_their_layers():
    assert [layer.name for layer in all_layers(_nested())] == ["outer_block", "inner", "a", "b", "c", "d"]


def test_leaf_layers_enters_every_nesting_level_and_takes_a_list():
    model = _nested()
    assert [layer.name for layer in leaf_layers(model)] == ["a", "b", "c", "d"]
    assert [layer.name for layer in leaf_layers(model.layers)] == ["a", "b", "c", "d"]


def test_a_wrapper_is_one_layer():
    wrapped = keras.layers.TimeDistributed(keras.layers.Dense(2, name="w"), name="td")
    model = keras.Sequential([keras.Input((3, 4)), wrapped])
    assert [layer.name for layer in all_layers(model)] == [layer.name for layer in leaf_layers(model)] == ["td"]
