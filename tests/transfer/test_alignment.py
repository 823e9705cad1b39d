"""transfer_weights keeps a recurrent layer's gates apart and matches input rows by channel."""

import keras
import numpy as np
import pytest

from kopt.transfer import transfer_weights
from kopt.transfer.alignment import gate_counts
from kopt.transfer.alignment import input_positions
from tests.transfer.test_widen import _inputs
from tests.transfer.test_widen import _randomize


def _recurrent(units, cell="LSTM", bidirectional=False, **kwargs):
    inputs = keras.Input((5, 3))
    layer = getattr(keras.layers, cell)(units, name="rnn", **kwargs)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer, name="rnn")
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(layer(inputs)))


def _by_gate(value, gates):
    return value.reshape(*value.shape[:-1], gates, -1)


@pytest.mark.parametrize("cell, gates, kwargs", [("LSTM", 4, {}), ("GRU", 3, {}), ("GRU", 3, {"reset_after": False}),
                                                 ("SimpleRNN", 1, {})])  # fmt: skip
@pytest.mark.parametrize("units", [(4, 6), (6, 4)])
def test_each_gate_of_a_resized_recurrent_layer_gets_its_own_units(cell, gates, kwargs, units):
    source, target = (
        _randomize(_recurrent(units[0], cell, **kwargs)),
        _randomize(_recurrent(units[1], cell, **kwargs), 1),
    )
    before = {variable.path: variable.numpy() for variable in target.get_layer("rnn").weights}
    report = transfer_weights(source, target)
    kept = min(units)
    for old, new in zip(source.get_layer("rnn").weights, target.get_layer("rnn").weights, strict=True):
        old_gates, new_gates = _by_gate(old.numpy(), gates), _by_gate(new.numpy(), gates)
        rows = slice(None, kept) if new.name == "recurrent_kernel" else slice(None)
        np.testing.assert_array_equal(new_gates[rows][..., :kept], old_gates[rows][..., :kept])
        np.testing.assert_array_equal(new_gates[..., kept:], _by_gate(before[new.path], gates)[..., kept:])
    kernel = next(entry for entry in report.partial if entry.weight.endswith("/kernel"))
    assert kernel.values == 3 * gates * kept
    assert (f"0:{kept} of each of {gates} gates" in kernel.reason) == (gates > 1)


def test_a_wider_target_with_its_new_units_silenced_computes_what_the_source_does():
    """Flatten repeats the channels per position, Bidirectional per direction: rows must follow them."""
    for build in (_flattened, lambda width: _recurrent(width, bidirectional=True)):
        source, target = _randomize(build(4)), _randomize(build(6), 1)
        transfer_weights(source, target)
        head = target.get_layer("head")
        kernel = head.kernel.numpy()
        width = 6
        kernel.reshape(-1, width, kernel.shape[-1])[:, 4:] = 0.0  # what the two new channels feed
        head.kernel.assign(kernel)
        for variable in target.get_layer("rnn").weights if "rnn" in [layer.name for layer in target.layers] else ():
            if variable.name == "recurrent_kernel":  # the new units' states feed the old ones too
                variable.assign(np.concatenate([variable.numpy()[:4], np.zeros_like(variable.numpy()[4:])]))
        x = _inputs(source)
        np.testing.assert_allclose(target.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-5)


def _flattened(filters):
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(keras.layers.Flatten()(x)))


def _concatenated(first, second, names=("a", "b", "head")):
    inputs = keras.Input((6,))
    a = keras.layers.Dense(first, name=names[0])(inputs)
    b = keras.layers.Dense(second, name=names[1])(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name=names[2])(keras.layers.Concatenate()([a, b])))


def test_rows_after_a_concatenation_of_other_widths_follow_their_channels():
    source, target = _randomize(_concatenated(4, 4)), _randomize(_concatenated(6, 2), 1)
    before = target.get_layer("head").kernel.numpy()
    report = transfer_weights(source, target)
    head, old = target.get_layer("head").kernel.numpy(), source.get_layer("head").kernel.numpy()
    np.testing.assert_array_equal(head[:4], old[:4])  # a's channels 0-3
    np.testing.assert_array_equal(head[4:6], before[4:6])  # a's new channels 4-5
    np.testing.assert_array_equal(head[6:], old[4:6])  # b's channels 0-1
    entry = next(entry for entry in report.partial if entry.name == "head/kernel")
    assert entry.reason == "target[6 of 8 matched by channel, 0:2] from the source" and entry.values == 12
    # The same channels in another order are a whole copy; by order, the renamed layers still match.
    swapped = _randomize(_concatenated(4, 4, names=("x", "y", "z")), 2)
    report = transfer_weights(_concatenated(4, 4), swapped, match="order")
    assert {entry.name for entry in report.copied} >= {"z/kernel"}


def test_rows_go_by_index_where_no_channel_graph_reads_the_model_and_the_report_says_so():
    class Subclassed(keras.Model):
        def __init__(self, width):
            super().__init__()
            self.hidden = keras.layers.Dense(width, name="hidden")
            self.head = keras.layers.Dense(2, name="head")

        def call(self, inputs):
            return self.head(self.hidden(inputs))

    source, target = Subclassed(4), Subclassed(6)
    source(np.zeros((1, 3), "float32"))
    target(np.zeros((1, 3), "float32"))
    report = transfer_weights(_randomize(source), target)
    head = next(entry for entry in report.partial if entry.name == "head/kernel")
    assert head.reason.startswith("target[0:4, 0:2] from the source; rows by index, as the channel graph cannot read")
    np.testing.assert_array_equal(target.head.kernel.numpy()[:4], source.head.kernel.numpy())


def test_gate_counts_and_positions():
    bidirectional = _recurrent(3, "GRU", bidirectional=True).get_layer("rnn")
    assert sorted(gate_counts(bidirectional).values()) == [3] * 6
    assert gate_counts(keras.layers.Dense(2)) == {}
    keys = [(("a", "b"), 0), (("a", "b"), 1)]
    assert input_positions([(("b",), 1), (("b",), 0)], keys).tolist() == [1, 0]
    assert input_positions([(("c",), 0)], keys).tolist() == [-1, -1]


def test_a_grouped_convolution_overlaps_group_by_group_and_other_groupings_are_skipped():
    def grouped(filters, groups):
        inputs = keras.Input((6, 6, 8))
        return keras.Model(inputs, keras.layers.Conv2D(filters, 3, groups=groups, name="conv")(inputs))

    source, target = _randomize(grouped(8, 2)), grouped(12, 2)
    report = transfer_weights(source, target)
    kernel, old = target.get_layer("conv").kernel.numpy(), source.get_layer("conv").kernel.numpy()
    np.testing.assert_array_equal(kernel[..., 6:10], old[..., 4:8])  # group 1's first four filters
    assert report.partial[0].reason == "target[0:3, 0:3, 0:4, 0:4 of each of 2 groups] from the source"
    report = transfer_weights(grouped(8, 4), target)
    assert report.skipped_layers() == {"conv": "its last axis holds 2 groups in the target, 4 in the source"}


def _after_concatenation(first, second, *readers):
    """Conv2D ``a`` (``first`` filters) and ``b`` (``second``) concatenated, then read by ``readers()`` in turn."""
    inputs = keras.Input((5, 5, 3))
    a = keras.layers.Conv2D(first, 1, name="a")(inputs)
    b = keras.layers.Conv2D(second, 1, name="b")(inputs)
    x = keras.layers.Concatenate()([a, b])
    for make in readers:
        x = make()(x)
    return keras.Model(inputs, x)


def test_depthwise_and_separable_layers_after_a_concatenation_follow_their_channels():
    def model(first, second):
        return _after_concatenation(
            first,
            second,
            lambda: keras.layers.DepthwiseConv2D(3, padding="same", name="dw"),
            lambda: keras.layers.SeparableConv2D(2, 3, name="sep"),
        )

    source, target = _randomize(model(2, 2)), _randomize(model(3, 1), 1)
    transfer_weights(source, target)
    for layer, weight in (("dw", "kernel"), ("dw", "bias"), ("sep", "depthwise_kernel"), ("sep", "pointwise_kernel")):
        new = getattr(target.get_layer(layer), weight).numpy()
        old = getattr(source.get_layer(layer), weight).numpy()
        axis = 0 if weight == "bias" else -2
        # a's channels 0-1 stay first; b's channel 0 moves from entry 2 to entry 3.
        np.testing.assert_array_equal(np.take(new, [0, 1, 3], axis=axis), np.take(old, [0, 1, 2], axis=axis))


def test_a_transposed_convolution_after_a_concatenation_reads_its_channels_on_the_last_axis():
    def model(first, second):
        return _after_concatenation(first, second, lambda: keras.layers.Conv2DTranspose(3, 2, strides=2, name="up"))

    source, target = _randomize(model(2, 2)), _randomize(model(3, 1), 1)
    transfer_weights(source, target)
    new, old = target.get_layer("up").kernel.numpy(), source.get_layer("up").kernel.numpy()  # (2, 2, out, in)
    # a's channels 0-1 stay first; b's channel 0 moves from entry 2 to entry 3, on the input (last) axis.
    np.testing.assert_array_equal(new[..., [0, 1, 3]], old[..., [0, 1, 2]])


def test_rows_after_a_flatten_of_another_grid_are_skipped_with_the_reason():
    def flattened(side):
        inputs = keras.Input((side, side, 1))
        x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
        return keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x)))

    report = transfer_weights(_randomize(flattened(4)), flattened(6))
    assert report.skipped_layers()["head"].startswith(
        "its rows cannot be matched: channel 0 of 'conv' occurs 36 times in the target's input and 16 in the source's"
    )
    assert [entry.name for entry in report.copied] == ["conv/kernel", "conv/bias", "head/bias"]


def test_a_conv_lstm_overlaps_gate_by_gate_with_its_windows_centred():
    def conv_lstm(filters, kernel):
        inputs = keras.Input((3, 6, 6, 2))
        return keras.Model(inputs, keras.layers.ConvLSTM2D(filters, kernel, padding="same", name="rnn")(inputs))

    source, target = _randomize(conv_lstm(2, 3)), _randomize(conv_lstm(3, 5), 1)
    transfer_weights(source, target)
    for name in ("kernel", "recurrent_kernel"):
        new = _by_gate(getattr(target.get_layer("rnn").cell, name).numpy(), 4)
        old = _by_gate(getattr(source.get_layer("rnn").cell, name).numpy(), 4)
        np.testing.assert_array_equal(new[1:4, 1:4, :2, :, :2], old)  # centre taps, each gate's first 2 filters


def test_wrapped_layers_pair_their_weights_whatever_keras_named_the_inner_layer():
    """Keras names a Bidirectional's directions and a TimeDistributed's layer after their class, with a
    counter per process (forward_lstm, forward_lstm_1): two models built in one process differ there."""

    def wrapped(units):
        inputs = keras.Input((5, 3))
        x = keras.layers.TimeDistributed(keras.layers.Dense(units), name="per_step")(inputs)
        x = keras.layers.Bidirectional(keras.layers.LSTM(units), name="rnn")(x)
        return keras.Model(inputs, keras.layers.Dense(2, name="head")(x))

    source, target = _randomize(wrapped(4)), wrapped(4)
    assert source.get_layer("rnn").forward_layer.name != target.get_layer("rnn").forward_layer.name
    report = transfer_weights(source, target)
    assert not report.skipped and not report.partial
    assert "rnn/forward/lstm_cell/kernel" in [entry.name for entry in report.copied]
    x = _inputs(source)
    np.testing.assert_allclose(target.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-6)
    wider = wrapped(6)
    report = transfer_weights(source, wider)
    assert not report.skipped and {entry.name for entry in report.partial} >= {"rnn/backward/lstm_cell/kernel"}
