"""Tests for kopt.pruning.structured_graph: channel maps, groups and what freezes them."""

import keras
import numpy as np
import pytest

from kopt.pruning.structured_graph import ChannelMap
from kopt.pruning.structured_graph import analyze


def _groups(model):
    graph = analyze(model)
    return graph, {tuple(g.producers): g for g in graph.groups()}


def test_channel_map_tile_repeat_concat_follow_channels_last_order():
    channel_map = ChannelMap.concat([ChannelMap.new_group(0, 2), ChannelMap.fixed(1)])
    assert channel_map.group.tolist() == [0, 0, -1]
    # Flatten of a 2x1x3 tensor: index ((h * W) + w) * C + c.
    assert channel_map.tile(2).index.tolist() == [0, 1, 0, 0, 1, 0]
    # Depthwise multiplier 2: input channel c feeds outputs 2c and 2c + 1.
    assert channel_map.repeat(2).index.tolist() == [0, 0, 1, 1, 0, 0]


def test_flatten_maps_each_dense_row_to_its_channel():
    inputs = keras.Input((2, 3, 4))
    x = keras.layers.Conv2D(5, 1, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    graph = analyze(model)
    rows = graph.layers["head"].input_maps[0]
    assert rows.size == 2 * 3 * 5
    assert rows.index.tolist() == list(range(5)) * 6
    root = graph.find(graph.layers["conv"].output_group)
    keep = graph.keep_positions(rows, {root: np.array([True, False, True, True, False])})
    assert keep.sum() == 6 * 3 and not keep[1] and not keep[4 + 5]


def test_add_unites_and_concatenate_offsets():
    inputs = keras.Input((6, 6, 3))
    a = keras.layers.Conv2D(4, 1, name="a")(inputs)
    b = keras.layers.Conv2D(4, 1, name="b")(inputs)
    c = keras.layers.Conv2D(2, 1, name="c")(inputs)
    x = keras.layers.Concatenate()([keras.layers.Add()([a, b]), c])
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="head")(x))
    graph, groups = _groups(model)
    assert set(groups) == {("a", "b"), ("c",), ("head",)}
    assert not groups[("a", "b")].frozen and not groups[("c",)].frozen
    assert (
        graph.roots_of(graph.layers["head"].input_maps[0]).tolist()
        == [groups[("a", "b")].id] * 4 + [groups[("c",)].id] * 2
    )


def test_misaligned_merges_and_inputs_freeze():
    inputs = keras.Input((6, 6, 4))
    a = keras.layers.Conv2D(2, 1, name="a")(inputs)
    b = keras.layers.Conv2D(2, 1, name="b")(inputs)
    whole = keras.layers.Conv2D(4, 1, name="whole")(inputs)
    x = keras.layers.Add(name="mixed")([keras.layers.Concatenate()([a, b]), whole])
    residual = keras.layers.Conv2D(4, 1, name="residual")(inputs)
    y = keras.layers.Add(name="skip")([inputs, residual])
    model = keras.Model(inputs, [keras.layers.Conv2D(1, 1, name="h1")(x), keras.layers.Conv2D(1, 1, name="h2")(y)])
    _, groups = _groups(model)
    for name in ("a", "b", "whole"):
        assert "do not line up" in groups[(name,)].frozen[0]
    assert "added by 'skip' to channels that cannot be removed" in groups[("residual",)].frozen
    assert groups[("h1",)].frozen == ["model output"] and groups[("h2",)].frozen == ["model output"]


def test_unknown_layers_are_recorded_as_blockers_with_their_groups():
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Conv2D(4, 3, groups=2, name="grouped")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(x))
    graph = analyze(model)
    (name, class_name, group_ids), *_ = graph.blockers
    assert (name, class_name) == ("grouped", "Conv2D")
    assert {graph.find(g) for g in group_ids} == {graph.find(graph.layers["conv"].output_group)}


def test_shared_layers_are_opaque():
    shared = keras.layers.Dense(4, name="shared")
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="first")(inputs)
    model = keras.Model(inputs, shared(shared(x)))
    graph = analyze(model)
    assert graph.layers["shared"].kind == "opaque"
    assert [b[0] for b in graph.blockers] == ["shared", "shared"]


def test_unbuilt_sequential_is_refused():
    with pytest.raises(ValueError, match="is not built"):
        analyze(keras.Sequential([keras.layers.Dense(2)], name="empty"))


def test_every_output_of_a_dict_output_model_is_frozen():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(6, name="hidden")(inputs)
    outputs = {"a": keras.layers.Dense(2, name="a")(hidden), "b": keras.layers.Dense(3, name="b")(hidden)}
    _, groups = _groups(keras.Model(inputs, outputs))
    assert groups[("a",)].frozen == groups[("b",)].frozen == ["model output"]
    assert not groups[("hidden",)].frozen
