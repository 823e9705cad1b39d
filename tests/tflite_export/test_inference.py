"""Models with augmentation layers inside export what model.predict computes (tflite_export.inference)."""

import contextlib

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export import converter
from tflite_export import inference

L = keras.layers


def _augmented_cnn(nested):
    """Keras' image-classification tutorial's layout: augmentation inside the model, BatchNormalization after it."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    augment = [L.RandomFlip("horizontal"), L.RandomRotation(0.1), L.RandomZoom(0.1), L.RandomContrast(0.2)]
    x = keras.Sequential(augment, name="augment")(inputs) if nested else inputs
    if not nested:
        for layer in augment:
            x = layer(x)
    x = L.Rescaling(1 / 255.0)(x)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3)(x)))
    model = keras.Model(inputs, L.Dense(4)(L.GlobalAveragePooling2D()(x)))
    batch_norm = next(layer for layer in model.layers if isinstance(layer, L.BatchNormalization))
    gamma, beta, _, _ = batch_norm.get_weights()
    batch_norm.set_weights([gamma, beta, np.full(8, 0.3, "float32"), np.full(8, 4.0, "float32")])
    return model


@pytest.mark.parametrize("nested", [False, True])
def test_an_augmented_model_exports_its_inference(tmp_path, nested):
    model = _augmented_cnn(nested)
    assert [type(layer).__name__ for layer in inference.layers_active_by_default(model)] == [
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast",
    ]  # fmt: skip
    images = (np.random.default_rng(0).random((8, 16, 16, 3)) * 255).astype("float32")
    path = tflite_export.convert(model, str(tmp_path / "augmented.tflite"))
    ops = tflite_export.inspect(path)["op_counts"]
    assert not tflite_export.inspect(path)["flex_ops"] and "RANDOM_UNIFORM" not in ops, ops
    # The moving statistics, not each batch's own: what model.predict computes.
    np.testing.assert_allclose(tflite_export.predict(path, images), model.predict(images, verbose=0), atol=1e-4)
    assert "__call__" not in vars(model)  # the model is left as it was


def test_without_inference_calls_the_random_ops_reach_the_converter(tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "inference_calls", lambda model: contextlib.nullcontext())
    with pytest.raises(converter.ConversionError, match="ImageProjectiveTransformV3"):
        tflite_export.convert(_augmented_cnn(False), str(tmp_path / "augmented.tflite"))


def test_layers_that_train_by_default_are_found_inside_wrappers_and_nested_models():
    assert inference.active_by_default(L.MixUp()) and not inference.active_by_default(L.BatchNormalization())
    inner = keras.Sequential([keras.Input((4, 4, 3)), L.RandomFlip()])
    outer = keras.Sequential([keras.Input((4, 4, 3)), inner, L.Flatten()])
    assert inference.layers_active_by_default(outer) == [inner.layers[0]]
    plain = keras.Sequential([keras.Input((3,)), L.Dense(2)])
    with inference.inference_calls(plain) as found:
        assert found == [] and "__call__" not in vars(plain)
