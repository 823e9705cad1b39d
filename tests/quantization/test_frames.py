"""TimeDistributed spatial layers in QAT (kopt.quantization.frames): folded into one op over every frame."""

import doctest
import warnings

import keras
import numpy as np
import pytest

import tflite_export
from kopt import quantization
from kopt.quantization.frames import UnfoldSteps
from kopt.quantization.frames import unwrapped_frames

L = keras.layers


def _clip_classifier():
    """A video-style model: per-frame Conv2D, BatchNormalization, ReLU, pooling and Flatten, then an LSTM."""
    inputs = keras.Input((4, 8, 8, 2))
    x = L.TimeDistributed(L.Conv2D(6, 3, use_bias=False), name="frame_conv")(inputs)
    x = L.TimeDistributed(L.BatchNormalization(), name="frame_norm")(x)
    x = L.TimeDistributed(L.ReLU(), name="frame_relu")(x)
    x = L.TimeDistributed(L.MaxPooling2D(), name="frame_pool")(x)
    x = L.TimeDistributed(L.Flatten(), name="frame_flat")(x)
    x = L.LSTM(8, name="reader")(x)
    return keras.Model(inputs, L.Dense(3, name="head")(x))


def _clips(count=16, seed=0):
    return np.random.default_rng(seed).normal(size=(count, 4, 8, 8, 2)).astype("float32")


def test_each_per_frame_layer_becomes_its_inner_layer_over_all_frames(tmp_path):
    model = _clip_classifier()
    x = _clips()
    qat = quantization.quantize_model(model)
    inner = {layer.layer.name: type(layer.layer).__name__ for layer in qat.layers if hasattr(layer, "layer")}
    assert inner["frame_conv"] == "Conv2D" and inner["frame_relu"] == "ReLU"
    assert not any(isinstance(layer, L.TimeDistributed) for layer in qat.layers)
    # The frames stay folded from the first per-frame layer to the last, so the BatchNormalization
    # folds into the convolution as it would without the wrappers.
    kinds = [type(layer).__name__ for layer in qat.layers]
    assert kinds.count("FoldSteps") == 1 and kinds.count("UnfoldSteps") == 1, kinds
    assert type(qat.get_layer("frame_norm")).__name__ == "Identity"
    # Before any training, the rewritten model computes the float model's outputs up to rounding.
    quantization.calibrate(qat, x)
    np.testing.assert_allclose(qat.predict(x, verbose=0), model.predict(x, verbose=0), atol=0.1)
    path = str(tmp_path / "clips.tflite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the LSTM's loop stays float by design
        tflite_export.convert(qat, path, mode="int8")
    ops = tflite_export.inspect(path)["op_counts"]
    assert ops.get("CONV_2D") == 1, ops  # one convolution over every frame, not one per frame
    labels = np.argmax(qat.predict(x, verbose=0), axis=-1)
    report = tflite_export.verify(path, qat, (x, labels))
    assert report["agreement"] == 1.0 and report["max_abs_diff"] < 0.02, report
    qat.save(tmp_path / "qat.keras")
    restored = keras.models.load_model(tmp_path / "qat.keras")
    np.testing.assert_allclose(restored.predict(x, verbose=0), qat.predict(x, verbose=0), atol=1e-6)


def test_the_stripped_model_keeps_the_folded_frames_and_saves(tmp_path):
    model = _clip_classifier()
    x = _clips(seed=1)
    stripped = quantization.strip_quantization(quantization.quantize_model(model))
    kinds = [type(layer).__name__ for layer in stripped.layers]
    assert "TimeDistributed" not in kinds and {"FoldSteps", "UnfoldSteps"} <= set(kinds)
    # Its weights are the quantized ones; the function is the float model's otherwise.
    np.testing.assert_allclose(stripped.predict(x, verbose=0), model.predict(x, verbose=0), atol=0.05)
    stripped.save(tmp_path / "stripped.keras")
    restored = keras.models.load_model(tmp_path / "stripped.keras")
    np.testing.assert_allclose(restored.predict(x, verbose=0), stripped.predict(x, verbose=0), atol=1e-6)


def test_wrappers_it_does_not_cover_are_left_alone():
    sequence = keras.Input((5, 3))
    recurrent = L.TimeDistributed(L.Dense(2), name="dense_steps")  # a Dense is unwrapped instead
    keras.Model(sequence, recurrent(sequence))
    assert unwrapped_frames(recurrent) is None
    assert unwrapped_frames(L.Conv2D(2, 3)) is None
    unbuilt = L.TimeDistributed(L.Conv2D(2, 3))
    assert unwrapped_frames(unbuilt) is None
    free_steps = keras.Input((None, 6, 6, 1))
    wrapped = L.TimeDistributed(L.Conv2D(2, 3), name="any_length")
    keras.Model(free_steps, wrapped(free_steps))
    assert unwrapped_frames(wrapped) is None  # unknown steps: nothing to unfold to


@pytest.mark.parametrize("steps", [0, -2, 2.5, True, "4"])
def test_unfold_steps_names_a_bad_step_count(steps):
    with pytest.raises(ValueError, match=f"steps={steps!r}"):
        UnfoldSteps(steps)


def test_the_module_examples_run():
    from kopt.quantization import frames

    assert doctest.testmod(frames).failed == 0


def test_a_per_frame_backbone_model_is_inlined_and_quantized(tmp_path):
    frame = keras.Input((8, 8, 2))
    y = L.Conv2D(6, 3, use_bias=False, name="bb_conv")(frame)
    y = L.ReLU(name="bb_relu")(L.BatchNormalization(name="bb_norm")(y))
    backbone = keras.Model(frame, L.GlobalAveragePooling2D(name="bb_pool")(y), name="backbone")
    clips = keras.Input((4, 8, 8, 2))
    x = L.TimeDistributed(backbone, name="frame_backbone")(clips)
    model = keras.Model(clips, L.Dense(3, name="head")(L.Flatten()(x)))
    x_data = _clips()
    qat = quantization.quantize_model(model)
    assert not any(isinstance(layer, (keras.Model, L.TimeDistributed)) for layer in qat.layers)
    assert type(qat.get_layer("bb_norm")).__name__ == "Identity"  # folded into bb_conv, as in any model
    assert isinstance(qat.get_layer("quant_bb_conv"), quantization.QuantizeWrapper)
    quantization.calibrate(qat, x_data)
    np.testing.assert_allclose(qat.predict(x_data, verbose=0), model.predict(x_data, verbose=0), atol=0.1)
    path = tflite_export.convert(qat, str(tmp_path / "backbone.tflite"), mode="int8")
    assert tflite_export.is_fully_integer(tflite_export.inspect(path))[0]
    assert tflite_export.inspect(path)["op_counts"]["CONV_2D"] == 1
    labels = np.argmax(qat.predict(x_data, verbose=0), axis=-1)
    assert tflite_export.verify(path, qat, (x_data, labels))["agreement"] >= 0.95
