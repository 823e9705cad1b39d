"""plan_float_prefix and prefix_cuts: where a float prefix may end, and which one the timing picks."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt import quantization
from kopt.quantization import float_prefix


def _chain():
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.ReLU(name="dw_relu")(x)
    x = keras.layers.Conv2D(16, 1, name="expand")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name="chain")


def _residual():
    inputs = keras.Input((8, 8, 4))
    a = keras.layers.Conv2D(4, 1, name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(a)
    added = keras.layers.Add(name="add")([a, b])
    c = keras.layers.Conv2D(4, 1, name="c")(added)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Flatten(name="flat")(c)))


def test_cuts_sit_before_a_compute_layer_and_never_split_a_convolution_from_its_batchnorm():
    # Not after "stem" (its BatchNormalization follows) nor after the input (that is no prefix at all).
    assert quantization.prefix_cuts(_chain()) == ["stem_relu", "dw_relu", "pool"]


def test_no_cut_where_two_tensors_cross():
    # Before "b", the residual branch "a" is still needed by "add": two tensors would cross.
    assert float_prefix.prefix_cuts(_residual()) == ["a", "add", "flat"]


def test_a_residual_written_with_keras_ops_is_read_from_the_graph_not_from_the_layer_list():
    # ``a + b`` is an operation, not a layer: model.layers does not list it, and the
    # layer list is then no order to cut by (ConvNeXt's blocks are written so).
    inputs = keras.Input((8, 8, 4))
    a = keras.layers.Conv2D(4, 1, name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(a)
    c = keras.layers.Conv2D(4, 1, name="c")(a + b)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Flatten(name="flat")(c)))
    assert float_prefix.prefix_cuts(model) == ["a", "flat"]
    assert float_prefix._prefix(model, "a") == ["a"]


def test_no_cut_before_an_output_that_comes_from_the_front():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    model = keras.Model(inputs, [hidden, keras.layers.Dense(2, name="head")(hidden)])
    assert float_prefix.prefix_cuts(model) == []


def test_a_sequential_model_is_read_as_its_graph():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4, name="d1"), keras.layers.ReLU(name="r"), keras.layers.Dense(2)]
    )
    assert float_prefix.prefix_cuts(model) == ["r"]


def test_a_subclassed_model_is_refused_by_name():
    class Custom(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(ValueError, match="neither"):
        float_prefix.prefix_cuts(Custom(name="custom"))


@pytest.mark.parametrize(
    "argument, value", [("max_float_share", 0.0), ("max_float_share", 1.5), ("max_candidates", 0), ("tolerance", -0.1)]
)
def test_bad_settings_are_refused_naming_the_value_before_any_conversion(argument, value, monkeypatch):
    monkeypatch.setattr(tflite_export, "convert", lambda *a, **k: pytest.fail("converted before checking"))
    with pytest.raises(ValueError, match=f"{argument}={value!r}"):
        quantization.plan_float_prefix(_chain(), np.zeros((2, 16, 16, 3), "float32"), **{argument: value})


def _plan(model, **options):
    data = np.random.default_rng(0).random((8, *model.input_shape[1:]), np.float32)
    return quantization.plan_float_prefix(model, data, rounds=1, calls=3, **options)


def test_the_plan_is_the_fastest_prefix_within_the_tolerance_and_its_layers_quantize():
    model = _chain()
    plan = _plan(model, max_float_share=1.0, tolerance=0.0)
    rows = plan["candidates"]
    assert [row["cut"] for row in rows] == [None, "stem_relu", "dw_relu", "pool"]
    assert plan["ms"] == min(row["ms"] for row in rows) and plan["int8_ms"] == rows[0]["ms"]
    assert plan["float_share"] == next(row["float_share"] for row in rows if row["cut"] == plan["cut"])
    assert [row["float_layers"] for row in rows] == [0, 3, 5, 7]
    assert rows[0]["float_share"] == 0 and rows[-1]["float_share"] > rows[1]["float_share"] > 0
    expected = {None: [], "stem_relu": ["stem", "stem_bn", "stem_relu"]}.get(plan["cut"])
    if expected is not None:
        assert plan["float_layers"] == expected
    assert plan["settings"]["tolerance"] == 0.0
    quantization.quantize_model(model, float_layers=plan["float_layers"])  # names the model's layers


def _fixed_times(monkeypatch, ms_by_key=None):
    # What is tried and which timed file is chosen, not the timing: a tiny model's 3 calls under a loaded
    # machine can put any file 10x behind another (CI saw the fully integer file lose by more than 11x).
    # The files are not read, so they are not converted either (the test above converts and times real ones).
    def fake_convert(model, path, **_):
        open(path, "wb").close()
        return path

    def fake_latency(paths, **_):
        if ms_by_key is not None:
            assert set(paths) == set(ms_by_key), paths
        return {key: 1.0 if ms_by_key is None else ms_by_key[key] for key in paths}

    monkeypatch.setattr(tflite_export, "convert", fake_convert)
    monkeypatch.setattr(tflite_export, "interleaved_latency", fake_latency)


@pytest.mark.parametrize(
    "tolerance, cut",
    [(10.0, None), (2.1, None), (1.9, "stem_relu"), (1.1, "stem_relu"), (0.9, "dw_relu"), (0.0, "dw_relu")],
)
def test_the_plan_is_the_shortest_prefix_within_the_tolerance_of_the_fastest(tolerance, cut, monkeypatch):
    # Keys: -1 the float file, 0 the fully integer one, then the cuts in order (stem_relu, dw_relu, pool).
    _fixed_times(monkeypatch, {-1: 1.0, 0: 0.9, 1: 0.6, 2: 0.3, 3: 0.8})
    model = _chain()
    plan = _plan(model, max_float_share=1.0, tolerance=tolerance)
    assert plan["cut"] == cut
    expected = {
        None: [],
        "stem_relu": ["stem", "stem_bn", "stem_relu"],
        "dw_relu": ["stem", "stem_bn", "stem_relu", "dw", "dw_relu"],
    }
    assert plan["float_layers"] == expected[cut]
    assert (plan["int8_ms"], plan["float_ms"]) == (0.9, 1.0)


def test_the_share_limit_and_the_candidate_limit_bound_what_is_tried(monkeypatch):
    _fixed_times(monkeypatch)
    model = _chain()
    stem_share = sum(model.get_layer(n).count_params() for n in ("stem", "stem_bn")) / model.count_params()
    plan = _plan(model, max_float_share=stem_share + 1e-6)
    assert [row["cut"] for row in plan["candidates"]] == [None, "stem_relu"]
    plan = _plan(model, max_float_share=1.0, max_candidates=2)
    assert [row["cut"] for row in plan["candidates"]] == [None, "stem_relu", "pool"]  # the first and the last


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, cut", [("MobileNetV3Small", "expanded_conv_project_bn"), ("TransformerEncoder", "attention_norm")]
)
def test_prefixes_of_real_architectures_convert_and_match_their_keras_model(name, cut, tmp_path):
    # A cut past MobileNetV3's first squeeze-and-excitation branch (EfficientNetB0's converts in 1.6x the time,
    # and its QAT file is tested in test_preprocessing_layers), and past the encoder's attention.
    from benchmarks import zoo_models

    model = zoo_models.build(name)
    assert cut in quantization.prefix_cuts(model)
    x, y = zoo_models.sample_inputs(name, 16)
    qat = quantization.quantize_model(model, float_layers=float_prefix._prefix(model, cut))
    quantization.calibrate(qat, x)
    path = tflite_export.convert(qat, str(tmp_path / "prefix.tflite"), mode="int8")
    assert not tflite_export.is_fully_integer(path)[0]
    assert tflite_export.verify(path, qat, (x, y))["agreement"] >= 0.9


def test_candidates_are_quantized_with_the_scheme_the_model_will_train_with(monkeypatch):
    schemes_used = []
    quantize = quantization.quantize_model

    def recording_quantize(model, **options):
        schemes_used.append(type(options["scheme"]).__name__)
        return quantize(model, **options)

    monkeypatch.setattr(quantization.api, "quantize_model", recording_quantize)
    _fixed_times(monkeypatch)
    plan = _plan(_chain(), max_float_share=1.0, max_candidates=1, scheme="binary")
    assert plan["settings"]["scheme"] == "BinaryQuantizeScheme"
    assert schemes_used == ["BinaryQuantizeScheme"] * 2  # no prefix, one prefix


def test_a_scheme_that_does_not_export_int8_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(tflite_export, "convert", lambda *a, **k: pytest.fail("converted before checking"))
    with pytest.raises(ValueError, match="exports 'int16x8'"):
        quantization.plan_float_prefix(_chain(), np.zeros((2, 16, 16, 3), "float32"), scheme="16x8")


def test_the_module_example_runs():
    import doctest

    assert doctest.testmod(float_prefix).failed == 0
