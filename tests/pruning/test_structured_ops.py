"""Tests for kopt.pruning.structured_ops: the role of a keras.ops call, read from its serialized arguments."""

import doctest

import keras
import pytest

from kopt.pruning import structured_ops
from kopt.pruning.structured_ops import classify_op
from kopt.pruning.structured_ops import constant_argument


def _op_node(model):
    """``(layer config, node)`` of the model's one keras.ops call."""
    entry = next(entry for entry in model.get_config()["layers"] if entry["module"].startswith("keras.src.ops"))
    return entry, entry["inbound_nodes"][0]


def test_a_constant_per_channel_is_found_and_its_position_given():
    inputs = keras.Input((3, 4))
    entry, node = _op_node(keras.Model(inputs, keras.ops.subtract(keras.ops.ones((4,)), inputs)))
    assert classify_op(entry, node) == "constant" and constant_argument(node) == 0


def test_a_keyword_tensor_or_an_unknown_op_is_opaque():
    inputs = keras.Input((4,))
    entry, node = _op_node(keras.Model(inputs, keras.ops.cumsum(inputs, axis=-1)))
    assert classify_op(entry, node) == "opaque"
    assert classify_op({"class_name": "Add", "module": "my.ops"}, node) == "opaque"  # not a keras.ops call


def test_a_node_without_a_constant_is_refused():
    inputs = keras.Input((4,))
    _, node = _op_node(keras.Model(inputs, keras.ops.add(inputs, 1.0)))
    with pytest.raises(ValueError, match="no constant argument"):
        constant_argument(node)


def test_the_module_examples_run():
    assert doctest.testmod(structured_ops).failed == 0
