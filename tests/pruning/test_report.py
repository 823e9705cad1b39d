"""Tests for kopt.pruning.report: sparsity of Keras models and .tflite files, M:N checks."""

import os

import keras
import numpy as np
import pytest

import tflite_export
from kopt.pruning.report import check_m_by_n
from kopt.pruning.report import empty_channels
from kopt.pruning.report import format_sparsity_report
from kopt.pruning.report import sparsity_report

RNG = np.random.default_rng(0)


def _model():
    inputs = keras.Input((4, 4, 8))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(8, activation="relu", name="fc")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(x), name="sparse_model")
    for layer in model.layers:
        # Values away from 0, so the only zeros are the ones the test makes.
        layer.set_weights(
            [
                RNG.uniform(0.5, 1.5, w.shape).astype("float32") * RNG.choice([-1, 1], w.shape)
                for w in layer.get_weights()
            ]
        )
    return model


def _make_2_by_4(model):
    """Zeros two of every four weights along each kernel's input-channel axis (-2)."""
    masks = {}
    for name in ("conv", "fc", "head"):
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        rows = np.moveaxis(kernel, -2, -1)
        blocks = rows.reshape(-1, 4)
        for block in blocks:
            block[RNG.choice(4, size=2, replace=False)] = 0
        kernel = np.moveaxis(blocks.reshape(rows.shape), -1, -2)
        layer.set_weights([kernel, bias])
        masks[name] = kernel == 0
    return masks


@pytest.fixture(scope="module")
def sparse():
    model = _model()
    masks = _make_2_by_4(model)
    return model, masks


def test_keras_report_counts_exactly_the_zeros_made(sparse):
    model, masks = sparse
    report = sparsity_report(model)
    by_name = {t["name"]: t for t in report["tensors"]}
    for name, mask in masks.items():
        assert by_name[f"{name}/kernel"]["zeros"] == int(mask.sum()) == mask.size // 2
        assert by_name[f"{name}/bias"]["zeros"] == 0
    assert report["overall"] == {
        "size": sum(m.size for m in masks.values()),
        "zeros": sum(int(m.sum()) for m in masks.values()),
        "sparsity": 0.5,
    }
    assert {entry["layer"]: entry["sparsity"] for entry in report["layers"]} == {"conv": 0.5, "fc": 0.5, "head": 0.5}
    assert check_m_by_n(model, m=2, n=4)["ok"]
    assert check_m_by_n(model, m=1, n=4)["ok"]  # two zeros per four satisfy "at least one"
    assert not check_m_by_n(model, m=3, n=4)["ok"]


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic", "int8"])
def test_tflite_report_finds_the_same_zeros(sparse, tmp_path, mode):
    model, masks = sparse
    calibration = RNG.normal(size=(16, 4, 4, 8)).astype("float32") if mode == "int8" else None
    path = tflite_export.convert(
        model, os.path.join(tmp_path, f"{mode}.tflite"), mode=mode, representative_dataset=calibration
    )
    report = sparsity_report(path)
    assert report["source"] == "tflite"
    weights = [
        t
        for t in report["tensors"]
        if any(op.split(":")[0] in ("FULLY_CONNECTED", "CONV_2D", "DEQUANTIZE") for op in t["ops"])
        and len(t["shape"]) >= 2
    ]
    # TFLite stores FULLY_CONNECTED weights as [out, in] and CONV_2D as [out, h, w, in].
    expected = sorted((int(m.sum()), tuple(np.moveaxis(m, -1, 0).shape)) for m in masks.values())
    assert sorted((t["zeros"], tuple(t["shape"])) for t in weights) == expected
    assert report["overall"]["zeros"] == sum(int(m.sum()) for m in masks.values())
    result = check_m_by_n(path, m=2, n=4)
    assert result["ok"] and len(result["tensors"]) == 3
    assert all(entry["axis"] == len(entry["shape"]) - 1 for entry in result["tensors"])
    assert "overall (ndim >= 2)" in format_sparsity_report(report)


def test_dense_model_fails_m_by_n(tmp_path):
    model = _model()
    result = check_m_by_n(model)
    assert not result["ok"]
    assert result["tensors"][0]["violating_blocks"] == result["tensors"][0]["blocks"]
    path = tflite_export.convert(model, os.path.join(tmp_path, "dense.tflite"))
    assert not check_m_by_n(path)["ok"]
    assert sparsity_report(path)["overall"]["sparsity"] == 0.0


def test_blocks_follow_the_input_channel_axis():
    # Two zeros per block of four along axis 0 (Dense inputs), none along the outputs.
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs))
    kernel = np.ones((8, 2), "float32")
    kernel[[0, 1, 4, 5]] = 0
    model.get_layer("d").set_weights([kernel, np.ones(2, "float32")])
    assert check_m_by_n(model, m=2, n=4)["ok"]
    kernel = np.ones((8, 2), "float32")
    kernel[:, 0] = 0  # half zeros, but along the output axis
    model.get_layer("d").set_weights([kernel, np.ones(2, "float32")])
    assert not check_m_by_n(model, m=2, n=4)["ok"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"m": 4, "n": 4}, r"m must be smaller than n .* Received: m=4, n=4"),
        ({"m": 0, "n": 4}, r"Received: m=0"),
        ({"m": 2, "n": 4.0}, r"Received: n=4.0"),
    ],
)
def test_bad_m_by_n_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_m_by_n(_model(), **kwargs)


def test_unreadable_inputs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="existing '.tflite' file"):
        sparsity_report(os.path.join(tmp_path, "missing.tflite"))
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        sparsity_report(b"definitely not a flatbuffer")


def test_empty_channels_counts_all_zero_output_channels_through_wrappers():
    from kopt.pruning import prune_low_magnitude

    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)
    x = keras.layers.Conv2DTranspose(3, 2, name="up")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="head")(x))
    conv = model.get_layer("conv").kernel
    conv.assign(np.where(np.arange(4) == 2, 0.0, np.asarray(conv.numpy())))
    dw = np.asarray(model.get_layer("dw").kernel.numpy()).copy()
    dw[:, :, 3, 1] = 0.0  # input channel 3, multiplier 1: flat output channel 7
    model.get_layer("dw").kernel.assign(dw)
    up = np.asarray(model.get_layer("up").kernel.numpy()).copy()  # (h, w, out, in)
    up[:, :, 0, :] = 0.0
    model.get_layer("up").kernel.assign(up)
    expected = {"conv": [2], "dw": [7], "up": [0]}

    report = empty_channels(model)
    assert {entry["layer"]: entry["indices"] for entry in report["layers"]} == expected
    assert report["empty"] == 3
    assert report["channels"] == 4 + 8 + 3 + 5
    # The same channels are found inside pruning wrappers (layer names gain "prune_low_magnitude_").
    wrapped = empty_channels(prune_low_magnitude(model))
    assert {
        entry["layer"].replace("prune_low_magnitude_", ""): entry["indices"] for entry in wrapped["layers"]
    } == expected
    with pytest.raises(ValueError, match="Received: model="):
        empty_channels("model.keras")


def test_kernel_sparsity_counts_every_kernel_or_only_what_pruning_acts_on():
    import keras
    import numpy as np

    from kopt.pruning import kernel_sparsity

    class Table(keras.layers.Layer):  # a 2-D weight that kopt cannot prune
        def build(self, input_shape):
            self.table = self.add_weight(shape=(4, 4), initializer="zeros")

        def call(self, inputs):
            return inputs @ self.table

    model = keras.Sequential([keras.Input((4,)), Table(), keras.layers.Dense(4)])
    model.layers[1].kernel.assign(np.array([[0.0, 1.0, 2.0, 3.0]] * 4))  # a quarter zero
    assert kernel_sparsity(model) == (16 + 4) / 32
    assert kernel_sparsity(model, prunable_only=True) == 4 / 16
