"""Tests for tflite_export.export_hooks: libraries prepare their layers for conversion."""

import contextlib

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export import export_hooks


class _Doubling(keras.layers.Layer):
    """A training device: doubles its input; the exported model must not hold it."""

    def call(self, inputs):
        return inputs * 2.0


def _without_doubling(model, mode):
    del mode
    kept = [layer for layer in model.layers if not isinstance(layer, _Doubling)]
    return keras.Sequential([keras.Input(model.input_shape[1:]), *kept])


def test_prepare_hook_replaces_the_library_layer_before_conversion(tmp_path):
    export_hooks.register_export_hook(_Doubling, prepare=_without_doubling)
    model = keras.Sequential([keras.Input((3,)), _Doubling(), keras.layers.Dense(2)])
    path = tflite_export.convert(model, tmp_path / "m.tflite")
    x = np.ones((1, 3), "float32")
    np.testing.assert_allclose(tflite_export.predict(path, x), model.layers[1](x), rtol=1e-5)


def test_hooks_run_once_per_model_in_layer_order():
    class First(keras.layers.Layer):
        def call(self, inputs):
            return inputs

    class Second(First):
        pass

    one = export_hooks.register_export_hook((First,), prepare=lambda model, mode: model)
    two = export_hooks.register_export_hook(Second, lowering=contextlib.nullcontext)
    model = keras.Sequential([keras.Input((2,)), Second(), First(), Second()])
    assert export_hooks.hooks_of(model) == [two, one]
    assert export_hooks.is_quantization_aware(model) and export_hooks.lowering_of(model) is contextlib.nullcontext


def test_a_model_without_hooked_layers_is_unchanged_and_not_quantization_aware():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert export_hooks.prepare_for_export(model, "int8") is model
    assert not export_hooks.is_quantization_aware(model)


@pytest.mark.parametrize("classes, kwargs, error, match", [
    (int, {"prepare": print}, TypeError, "keras.layers.Layer subclasses"),
    (_Doubling, {"prepare": 3}, TypeError, "prepare=3"),
    (_Doubling, {}, ValueError, "needs prepare, lowering or both"),
])  # fmt: skip
def test_bad_registrations_name_the_argument(classes, kwargs, error, match):
    with pytest.raises(error, match=match):
        export_hooks.register_export_hook(classes, **kwargs)


def test_kopt_registers_its_wrappers():
    import kopt.clustering
    import kopt.pruning
    import kopt.quantization

    for cls in (kopt.pruning.PruneLowMagnitude, kopt.clustering.ClusterWeights, kopt.quantization.QuantizeWrapper):
        assert cls in export_hooks._HOOKS, cls
    assert export_hooks._HOOKS[kopt.quantization.QuantizeWrapper].lowering is not None
