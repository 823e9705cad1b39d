"""tflite_export.recurrent: RNN models convert with a static batch, and unrolled for integer modes."""

import types

import keras
import numpy as np
import pytest

import tflite_export
from tflite_export.recurrent import automatic_batch_size
from tflite_export.recurrent import unrolled

L = keras.layers


def test_only_recurrent_models_get_a_fixed_batch_and_unrolled_copies():
    dense = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    assert automatic_batch_size(dense) is None and unrolled(dense) is dense
    sequence = keras.Input((5, 3))
    model = keras.Model(sequence, L.GRU(4)(sequence))
    copy = unrolled(model)
    assert copy is not model and copy.layers[-1].unroll and not model.layers[-1].unroll
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    np.testing.assert_allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize(
    "make_layer", [lambda: L.LSTM(8), lambda: L.GRU(8), lambda: L.Bidirectional(L.LSTM(4)), lambda: L.SimpleRNN(8)]
)
def test_recurrent_models_convert_with_a_static_batch_chosen_for_them(tmp_path, make_layer):
    keras.utils.set_random_seed(4)
    sequence = keras.Input((10, 6))
    model = keras.Model(sequence, L.Dense(3)(make_layer()(sequence)), name="rnn")
    with pytest.warns(UserWarning, match="batch_size=1"):
        path = tflite_export.convert(model, str(tmp_path / "rnn.tflite"))
    assert tflite_export.inspect(path)["inputs"][0]["shape_signature"][0] == 1
    inputs = np.random.default_rng(0).normal(size=(7, 10, 6)).astype("float32")
    np.testing.assert_allclose(tflite_export.predict(path, inputs), model.predict(inputs, verbose=0), atol=1e-5)
    # Asked for a dynamic batch, the converter's refusal says what to do.
    with pytest.raises(tflite_export.ConversionError, match="batch_size=1"):
        tflite_export.convert(model, str(tmp_path / "dynamic.tflite"), batch_size=None)


@pytest.mark.parametrize("make_layer", [lambda: L.LSTM(8), lambda: L.Bidirectional(L.GRU(4))])
def test_integer_modes_unroll_recurrent_layers_instead_of_crashing_the_calibrator(tmp_path, make_layer):
    # TensorFlow's calibrator segfaults on a recurrent WHILE loop; kopt converts it unrolled.
    keras.utils.set_random_seed(5)
    sequence = keras.Input((6, 4))
    model = keras.Model(sequence, L.Dense(3)(make_layer()(sequence)), name="rnn_int8")
    inputs = np.random.default_rng(1).normal(size=(64, 6, 4)).astype("float32")
    with pytest.warns(UserWarning, match="batch_size=1"):
        path = tflite_export.convert(
            model, str(tmp_path / "rnn_int8.tflite"), mode="int8", representative_dataset=inputs
        )
    report = tflite_export.inspect(path)
    assert "WHILE" not in report["op_counts"] and report["op_counts"]["FULLY_CONNECTED"] >= 6
    np.testing.assert_allclose(tflite_export.predict(path, inputs), model.predict(inputs, verbose=0), atol=0.1)
    # Sequences of any length cannot be unrolled: a clear refusal, not a crash.
    free = keras.Input((None, 4))
    ragged = keras.Model(free, L.Dense(3)(L.LSTM(4)(free)))
    with pytest.raises(ValueError, match="fixed number of time steps"):
        tflite_export.convert(
            ragged, str(tmp_path / "ragged.tflite"), mode="int8", representative_dataset=inputs, batch_size=1
        )


def test_looped_layers_names_the_loops_and_its_example_runs():
    import doctest

    from tflite_export import recurrent

    inputs = keras.Input((5, 3))
    looped = keras.layers.GRU(4, return_sequences=True, name="looped")(inputs)
    both = keras.layers.Bidirectional(keras.layers.LSTM(2), name="both")(looped)
    model = keras.Model(inputs, keras.layers.Dense(2)(both))
    assert recurrent.looped_layers(model) == ["looped", "both"]
    assert recurrent.looped_layers(unrolled(model)) == []
    assert doctest.testmod(recurrent).failed == 0


def test_a_failed_quantization_aware_conversion_says_its_loop_must_not_be_calibrated(tmp_path, monkeypatch):
    # The converter's calibration of a QAT model's float loop fails data-dependently (a same-scale
    # constraint on the slice after the loop, seen on an LSTM over MNIST rows); the error says what to do.
    from kopt.quantization import quantize_model
    from tflite_export import converter

    inputs = keras.Input((6, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.LSTM(4, name="rnn")(inputs)))
    qat = quantize_model(model)

    def failing_convert():
        raise RuntimeError("error: 'tfl.strided_slice' op quantization parameters violate the same scale constraint")

    def failing(*args, **kwargs):
        return types.SimpleNamespace(target_spec=types.SimpleNamespace(), optimizations=[], convert=failing_convert)

    monkeypatch.setattr(converter, "_make_converter", failing)
    monkeypatch.setattr(converter, "_configure", lambda *args, **kwargs: None)
    data = np.zeros((4, 6, 3), "float32")
    with pytest.raises(tflite_export.ConversionError, match=r"same scale.*quant_rnn.*representative_dataset=None"):
        tflite_export.convert(qat, str(tmp_path / "q.tflite"), mode="int8", representative_dataset=data)
    with pytest.raises(tflite_export.ConversionError) as err:
        tflite_export.convert(qat, str(tmp_path / "q.tflite"), mode="int8")
    assert "same scale" in str(err.value) and "representative_dataset=None" not in str(err.value)
