"""kopt.quantization.annotate: QuantizeAnnotate records intent and computes in float."""

import os

import keras
import numpy as np
import pytest

from kopt.quantization import quantize_annotate_layer
from kopt.quantization import quantize_apply
from kopt.quantization.annotate import QuantizeAnnotate
from kopt.quantization.quantize_config import NoOpQuantizeConfig
from kopt.quantization.wrapper import QuantizeWrapper
from kopt.testing import run_layer_test
from kopt.testing import run_serialization_test


def test_layer_test():
    data = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    run_layer_test(
        lambda **kw: QuantizeAnnotate(keras.layers.Dense(3), **kw),
        {"quantize_config": None},
        data,
        expected_output_shape=(4, 3),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


def test_annotation_computes_exactly_what_the_layer_computes():
    x = np.random.default_rng(1).normal(size=(3, 6, 6, 2)).astype("float32")
    annotated = QuantizeAnnotate(keras.layers.Conv2D(4, 3, activation="relu"))
    expected = keras.ops.convert_to_numpy(annotated.layer(x))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(annotated(x)), expected)
    assert annotated.name == f"quant_annotate_{annotated.layer.name}"


def test_serialization_keeps_the_config():
    annotated = QuantizeAnnotate(keras.layers.Dense(2, name="fc"), quantize_config=NoOpQuantizeConfig())
    restored = run_serialization_test(annotated)
    assert isinstance(restored.quantize_config, NoOpQuantizeConfig) and restored.layer.name == "fc"
    assert run_serialization_test(QuantizeAnnotate(keras.layers.Dense(2))).quantize_config is None


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: QuantizeAnnotate("dense"), "to_annotate='dense'"),
        (lambda: QuantizeAnnotate(keras.Sequential([keras.layers.Dense(1)])), "quantize_annotate_model"),
        (
            lambda: QuantizeAnnotate(QuantizeAnnotate(keras.layers.Dense(1, name="fc"))),
            "'quant_annotate_fc' is already annotated",
        ),
        (lambda: QuantizeAnnotate(keras.layers.Dense(1, name="fc"), quantize_config="8bit"), "quantize_config='8bit'"),
    ],
)
def test_arguments_are_validated(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_an_annotated_model_saves_loads_and_then_quantizes(tmp_path):
    inputs = keras.Input((5,), name="features")
    hidden = quantize_annotate_layer(keras.layers.Dense(4, activation="relu", name="hidden"))(inputs)
    outputs = quantize_annotate_layer(keras.layers.Dense(2, name="logits"), NoOpQuantizeConfig())(hidden)
    model = keras.Model(inputs, outputs)
    path = os.path.join(tmp_path, "annotated.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(2).normal(size=(4, 5)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))
    assert isinstance(loaded.get_layer("quant_annotate_logits").quantize_config, NoOpQuantizeConfig)
    qat = quantize_apply(loaded)
    assert [type(layer).__name__ for layer in qat.layers] == [
        "InputLayer",
        "QuantizeLayer",
        "QuantizeWrapper",
        "QuantizeWrapper",
    ]
    assert isinstance(qat.get_layer("quant_logits").quantize_config, NoOpQuantizeConfig)
    assert isinstance(qat.get_layer("quant_hidden"), QuantizeWrapper)
