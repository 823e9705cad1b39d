"""Per-tensor PTQ error: rounding alone costs about 0.3 steps; a badly scaled tensor stands out."""

import keras
import numpy as np
import pytest

from tflite_export.quantization_error import format_quantization_error
from tflite_export.quantization_error import quantization_error

pytestmark = pytest.mark.filterwarnings("ignore")


def _data(count=64):
    return np.random.default_rng(0).normal(size=(count, 8, 8, 1)).astype("float32")


def test_rows_per_quantized_tensor_with_errors_near_rounding():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    rows = quantization_error(model, _data())
    assert [row["op"] for row in rows][0] == "CONV_2D" and rows[-1]["op"] == "FULLY_CONNECTED"
    for row in rows:
        assert row["scale"] > 0 and row["rmse"] >= 0 and row["rmse_steps"] < 1.5
    assert "CONV_2D" in format_quantization_error(rows)


def test_a_channel_that_stretches_a_range_costs_the_others_resolution():
    # One channel 1000x larger than the rest: the per-tensor int8 step grows with it,
    # and so does the error the report shows for that tensor (in value, not in steps).
    def model(stretch):
        inputs = keras.Input((16,))
        scale = np.ones((16,), "float32")
        scale[0] = stretch
        hidden = keras.layers.Dense(16, kernel_initializer="identity")(inputs)
        return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Rescaling(scale)(hidden)))

    data = np.random.default_rng(0).normal(size=(64, 16)).astype("float32")
    plain, stretched = (max(row["rmse"] for row in quantization_error(model(s), data)) for s in (1.0, 1000.0))
    assert stretched > 50 * plain


def test_quantization_aware_models_and_bad_arguments_are_refused():
    from kopt.quantization import quantize_model

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="quantization-aware"):
        quantization_error(quantize_model(model), np.zeros((4, 4), "float32"))
    with pytest.raises(ValueError, match="max_examples must be a positive int. Received: max_examples=0"):
        quantization_error(model, np.zeros((4, 4), "float32"), max_examples=0)
    with pytest.raises(ValueError, match="needs representative_dataset"):
        quantization_error(model, None)
