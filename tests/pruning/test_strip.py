"""Tests for kopt.pruning.strip: plain models back, masked weights baked in."""

import keras
import numpy as np
import pytest

from kopt.pruning import PruneLowMagnitude
from kopt.pruning import prune_low_magnitude
from kopt.pruning import strip_pruning
from kopt.testing import run_model_saving_test


def _set_masks(model, sparsity=0.5):
    """Gives every wrapper a mask zeroing its first entries, without training."""
    for layer in _wrappers(model):
        for mask in layer.masks:
            values = np.ones(mask.shape, "float32").ravel()
            values[: int(values.size * sparsity)] = 0
            mask.assign(values.reshape(mask.shape))


def _wrappers(model):
    found = []
    for layer in model.layers:
        if isinstance(layer, PruneLowMagnitude):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(_wrappers(layer))
    return found


def _nested_model():
    inner_inputs = keras.Input((8,))
    inner = keras.Model(inner_inputs, keras.layers.Dense(6, name="inner_dense")(inner_inputs), name="inner")
    block = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, name="seq_dense"), keras.layers.ReLU()], name="block"
    )
    inputs = keras.Input((8,))
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(block(inner(inputs))))


def test_strip_restores_classes_architecture_and_outputs():
    model = _nested_model()
    pruned = prune_low_magnitude(model)
    _set_masks(pruned)
    x = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    stripped = strip_pruning(pruned)
    assert [type(layer).__name__ for layer in stripped.layers] == [type(layer).__name__ for layer in model.layers]
    assert [type(layer).__name__ for layer in stripped.get_layer("block").layers] == ["Dense", "ReLU"]
    assert not _wrappers(stripped)
    np.testing.assert_allclose(stripped.predict(x, verbose=0), pruned.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert len(stripped.weights) == len(model.weights)
    for name in ("head",):
        kernel = keras.ops.convert_to_numpy(stripped.get_layer(name).kernel.value)
        assert (kernel == 0).mean() == pytest.approx(0.5, abs=0.1)
    run_model_saving_test(stripped, x)


def test_strip_bakes_masks_without_touching_the_pruned_model():
    pruned = prune_low_magnitude(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")]))
    _set_masks(pruned)
    wrapper = pruned.layers[0]
    raw = keras.ops.convert_to_numpy(wrapper.layer.kernel.value).copy()
    stripped = strip_pruning(pruned)
    assert isinstance(stripped, keras.Sequential) and type(stripped.layers[0]) is keras.layers.Dense
    mask = keras.ops.convert_to_numpy(wrapper.masks[0].value)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(stripped.layers[0].kernel.value), raw * mask)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(wrapper.layer.kernel.value), raw)


def test_strip_of_an_unpruned_model_is_a_copy_and_subclassed_models_are_refused():
    model = _nested_model()
    copy = strip_pruning(model)
    for original, copied in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(original, copied)

    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(ValueError, match="subclassed model.*apply_masks"):
        strip_pruning(Subclassed())
    with pytest.raises(ValueError, match="expects a keras.Model"):
        strip_pruning(keras.layers.Dense(2))
