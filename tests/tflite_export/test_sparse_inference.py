"""Tests for sparse weights in tflite_export.convert and tflite_export.sparse_inference_check."""

import os

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export.flatbuffer import TFLiteFlatbuffer


def _fast_sparse_net(*, explicit=True, side=33, stem_channels=3, zero_fraction=0.9, end="mean"):
    """A network in the form of "Fast Sparse ConvNets", with 1x1 kernels magnitude-pruned."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((side, side, stem_channels))
    x = keras.layers.ZeroPadding2D(1)(inputs) if explicit else inputs
    x = keras.layers.Conv2D(8, 3, strides=2, padding="valid" if explicit else "same", activation="relu6")(x)
    for stride in (1, 2):
        x = keras.layers.Conv2D(24, 1, activation="relu6")(x)
        x = keras.layers.ZeroPadding2D(1)(x)
        x = keras.layers.DepthwiseConv2D(3, strides=stride, activation="relu6")(x)
    x = keras.layers.Conv2D(32, 1, activation="relu6")(x)
    if end == "mean":
        x = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
    for layer in model.layers:
        if type(layer) is keras.layers.Conv2D and layer.kernel_size == (1, 1):
            kernel = layer.kernel.numpy()
            kernel[np.abs(kernel) < np.quantile(np.abs(kernel), zero_fraction)] = 0
            layer.kernel.assign(kernel)
    return model


def _outputs(path, images):
    return tflite_export.predict(path, images)


def test_sparse_weights_store_densify_ops_and_keep_the_arithmetic(tmp_path):
    model = _fast_sparse_net()
    dense = tflite_export.convert(model, tmp_path / "dense.tflite")
    sparse = tflite_export.convert(model, tmp_path / "sparse.tflite", sparse_weights=True)
    ops = [op.name for op in TFLiteFlatbuffer(sparse).ops]
    assert ops.count("DENSIFY") == 3 and "DENSIFY" not in [op.name for op in TFLiteFlatbuffer(dense).ops]
    assert os.path.getsize(sparse) < 0.85 * os.path.getsize(dense)  # small model: the format has a fixed cost
    images = np.random.default_rng(0).random((4, 33, 33, 3), np.float32)
    np.testing.assert_allclose(_outputs(sparse, images), _outputs(dense, images), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_outputs(sparse, images), model.predict(images, verbose=0), rtol=1e-3, atol=1e-4)


def test_a_model_in_the_right_form_is_eligible_after_conversion(tmp_path):
    # The converter folds the ZeroPadding2D layers into SAME padding; convert gives them back.
    path = tflite_export.convert(_fast_sparse_net(), tmp_path / "m.tflite", sparse_weights=True)
    check = tflite_export.sparse_inference_check(path)
    assert check["eligible"], check["reasons"]
    assert check["sparse_tensors"] == 3 and check["zero_fraction"] >= 0.89
    assert [op.name for op in TFLiteFlatbuffer(path).ops].count("PAD") == 3


def test_dense_file_is_not_eligible_and_says_how_to_fix_it(tmp_path):
    path = tflite_export.convert(_fast_sparse_net(), tmp_path / "m.tflite")
    check = tflite_export.sparse_inference_check(path)
    assert not check["eligible"]
    assert any("sparse_weights=True" in reason for reason in check["reasons"])


def test_too_few_zeros_are_reported(tmp_path):
    path = tflite_export.convert(_fast_sparse_net(zero_fraction=0.5), tmp_path / "m.tflite", sparse_weights=True)
    check = tflite_export.sparse_inference_check(path)
    assert not check["eligible"] and any("needs more than 2/3" in reason for reason in check["reasons"])


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"stem_channels": 4}, "3x3 stride-2 CONV_2D over 3 channels"),
        ({"end": "flatten"}, "op #"),
        ({"side": 32, "explicit": False}, "no stem"),
    ],
)
def test_the_first_broken_condition_is_named(tmp_path, kwargs, expected):
    path = tflite_export.convert(_fast_sparse_net(**kwargs), tmp_path / "m.tflite", sparse_weights=True)
    check = tflite_export.sparse_inference_check(path)
    assert not check["eligible"]
    assert any(expected in reason for reason in check["reasons"]), check["reasons"]


def test_integer_files_are_refused(tmp_path):
    model = _fast_sparse_net()
    images = np.random.default_rng(0).random((8, 33, 33, 3), np.float32)
    path = tflite_export.convert(
        model, tmp_path / "m.tflite", mode="int8", representative_dataset=images, sparse_weights=True
    )
    check = tflite_export.sparse_inference_check(path)
    assert any("float only" in reason for reason in check["reasons"])


def test_bad_sparse_weights_argument_is_named(tmp_path):
    with pytest.raises(ValueError, match="sparse_weights=1"):
        tflite_export.convert(_fast_sparse_net(), tmp_path / "m.tflite", sparse_weights=1)


@pytest.mark.parametrize(
    "machine, flags, expected",
    [
        ("x86_64", "fpu sse sse2 avx avx2 avx512f", False),
        ("x86_64", "fpu sse sse2 ssse3 sse4_1", True),  # "avx" is a whole flag, not a part of another
        ("aarch64", None, True),
        ("riscv64", None, None),
    ],
)
def test_the_cpu_check_follows_xnnpacks_rule(tmp_path, machine, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n" if flags else "")
    result = tflite_export.xnnpack_sparse_cpu(str(cpuinfo), machine=machine)
    assert result["sparse_kernels"] is expected
    assert result["reason"].startswith(machine)


def test_the_cpu_check_says_unknown_when_the_flags_cannot_be_read(tmp_path):
    result = tflite_export.xnnpack_sparse_cpu(str(tmp_path / "missing"), machine="x86_64")
    assert result["sparse_kernels"] is None and "unreadable" in result["reason"]


def test_the_file_check_reports_this_cpu_apart_from_the_files_form(tmp_path):
    path = tflite_export.convert(_fast_sparse_net(), tmp_path / "m.tflite", sparse_weights=True)
    check = tflite_export.sparse_inference_check(path)
    assert check["eligible"]
    assert check["this_cpu"] == tflite_export.xnnpack_sparse_cpu()


def test_an_integer_file_whose_fully_connected_weights_would_be_densified_is_refused(tmp_path):
    # LiteRT's XNNPACK delegate fails to prepare such a FULLY_CONNECTED ("failed to delegate
    # FULLY_CONNECTED node"), so the file would not load in the default interpreter.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,))
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(keras.layers.Dense(32, name="hidden")(inputs)))
    kernel, bias = model.get_layer("hidden").get_weights()
    kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.8)] = 0.0
    model.get_layer("hidden").set_weights([kernel, bias])
    data = np.random.default_rng(0).random((8, 16), np.float32)
    with pytest.raises(tflite_export.ConversionError, match=r"FULLY_CONNECTED.*sparse_weights=False.*mode='int8'"):
        tflite_export.convert(
            model, tmp_path / "m.tflite", mode="int8", representative_dataset=data, sparse_weights=True
        )
    assert not (tmp_path / "m.tflite").exists()
    # float32 files keep their sparse weights: XNNPACK densifies them when it loads the file.
    path = tflite_export.convert(model, tmp_path / "f.tflite", sparse_weights=True)
    np.testing.assert_allclose(tflite_export.predict(path, data), model.predict(data, verbose=0), atol=1e-5)
