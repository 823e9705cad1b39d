"""The conformance matrix's widen and deepen cells."""

import keras
import numpy as np
import pytest

from benchmarks import zoo
from benchmarks import zoo_transfer


def test_layers_are_tried_from_the_middle_outward():
    assert zoo_transfer._middle_out(["a", "b", "c", "d", "e"]) == ["c", "b", "d", "a", "e"]


def _check_file(path, reference, x, y):
    return {"checked": reference.count_params()}


def test_a_model_refused_everywhere_is_one_refusal_naming_the_last_reason(tmp_path):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="only")(inputs))
    x = np.ones((2, 6), "float32")
    with pytest.raises(ValueError, match="1 layer\\(s\\) tried, each refused; the last: .*'only'"):
        zoo_transfer.widen_cell(model, x, np.zeros(2), str(tmp_path), _check_file)


def test_deepen_falls_back_to_a_linear_layer_after_a_non_idempotent_activation(tmp_path):
    inputs = keras.Input((6,))
    first = keras.layers.Dense(4, activation="relu", name="first")(inputs)
    hidden = keras.layers.Dense(5, activation="gelu", name="hidden")(first)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(hidden))
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    cell = zoo_transfer.deepen_cell(model, x, np.zeros(4), str(tmp_path), _check_file)
    assert cell["layer"] == "hidden" and cell["refused"] == 0 and cell["keras_max_abs_diff"] < 1e-6
    assert cell["params_ratio"] > 1 and cell["checked"] == model.count_params() + 30


@pytest.mark.slow
@pytest.mark.parametrize(
    "model_name, technique", [("MobileNetV2", "widen"), ("LSTM", "widen"), ("TransformerEncoder", "deepen")]
)
def test_transfer_cells_keep_the_outputs_on_real_models(model_name, technique):
    cell = zoo.run_cell(model_name, technique)
    assert cell["status"] == "ok", cell
    assert cell["keras_max_abs_diff"] < 1e-4 and cell["agreement"] == 1.0 and cell["params_ratio"] > 1, cell
