"""Per-frame layers exported folded (tflite_export.time_folding): one op over every frame, the same function."""

import doctest

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export import time_folding

L = keras.layers


def _clip_model(steps=5):
    clip = keras.Input((steps, 8, 8, 2))
    x = L.TimeDistributed(L.Conv2D(4, 3, activation="relu"), name="frame_conv")(clip)
    x = L.TimeDistributed(L.GlobalAveragePooling2D(), name="frame_pool")(x)
    x = L.TimeDistributed(L.Dense(6), name="frame_dense")(x)
    return keras.Model(clip, L.Dense(3, name="head")(L.Flatten()(x)))


def test_the_file_runs_each_per_frame_layer_once_and_computes_the_same(tmp_path):
    model = _clip_model()
    x = np.random.default_rng(0).normal(size=(8, 5, 8, 8, 2)).astype("float32")
    folded = tflite_export.convert(model, str(tmp_path / "folded.tflite"))
    looped = tflite_export.convert(model, str(tmp_path / "looped.tflite"), fold_time_distributed=False)
    assert tflite_export.inspect(folded)["op_counts"]["CONV_2D"] == 1
    assert tflite_export.inspect(looped)["op_counts"]["CONV_2D"] == 5  # one per frame, as Keras runs it
    labels = np.argmax(model.predict(x, verbose=0), axis=-1)
    for path in (folded, looped):
        assert tflite_export.verify(path, model, (x, labels))["max_abs_diff"] < 1e-5
    assert "call" not in vars(model.get_layer("frame_conv"))  # the export left the layer as it was


def test_what_is_not_folded():
    free_steps = keras.Input((None, 6, 6, 1))
    any_length = L.TimeDistributed(L.Conv2D(2, 3))
    keras.Model(free_steps, any_length(free_steps))
    assert not time_folding.foldable(any_length)  # no step count to unfold to
    assert not time_folding.foldable(L.TimeDistributed(L.Dense(2)))  # never built
    assert not time_folding.foldable(L.Dense(2))
    assert time_folding.foldable(_clip_model().get_layer("frame_conv"))


def test_a_masked_call_runs_as_keras_runs_it():
    tokens = keras.Input((4,), dtype="int32")
    x = L.Embedding(20, 6, mask_zero=True)(tokens)
    x = L.TimeDistributed(L.Dense(3), name="per_step")(x)
    model = keras.Model(tokens, L.GlobalAveragePooling1D()(x))
    ids = np.array([[3, 5, 0, 0], [1, 2, 3, 4]], "int32")
    expected = np.asarray(model(ids))
    with time_folding.folded_time_distributed(model) as names:
        assert names == ["per_step"]
        np.testing.assert_allclose(np.asarray(model(ids)), expected, atol=1e-6)


def test_the_layers_are_restored_when_the_export_fails():
    model = _clip_model()
    with pytest.raises(RuntimeError), time_folding.folded_time_distributed(model):
        raise RuntimeError("export failed")
    assert all("call" not in vars(layer) for layer in model.layers)


def test_fold_time_distributed_takes_a_bool(tmp_path):
    with pytest.raises(ValueError, match="fold_time_distributed='yes'"):
        tflite_export.convert(_clip_model(), str(tmp_path / "m.tflite"), fold_time_distributed="yes")


def test_the_module_examples_run():
    assert doctest.testmod(time_folding).failed == 0
