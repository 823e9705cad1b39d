"""Wrappers find the grids around them: input quantizers, fused ReLUs, an Add's inputs, and twins."""

import keras
import numpy as np

import tflite_export
from kopt.quantization import QuantizeLayer
from kopt.quantization import QuantizeWrapper
from kopt.quantization import quantize_model
from kopt.quantization import transforms

L = keras.layers


def _twin_relus(second=None):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((10, 10, 3))
    x = L.Conv2D(8, 3, name="conv")(inputs)
    a = L.ReLU(name="relu_a")(x)  # NASNet applies relu to one tensor in several branches
    b = (second or L.ReLU(name="relu_b"))(x)
    a = L.Conv2D(8, 1, name="after_a")(a)
    b = L.DepthwiseConv2D(3, padding="same", name="after_b")(b)
    return keras.Model(inputs, L.Concatenate()([a, b]))


def _wrappers(model):
    return {layer.layer.name: layer for layer in model.layers if isinstance(layer, QuantizeWrapper)}


def test_a_conv_read_only_by_identical_relus_fuses_them():
    assert "conv" in transforms.plan(_twin_relus()).fused
    assert "conv" not in transforms.plan(_twin_relus(L.ReLU(max_value=6.0, name="relu_b"))).fused


def test_a_twin_rounds_on_its_siblings_grid_and_leaves_the_range_to_it():
    images = np.random.default_rng(0).normal(size=(32, 10, 10, 3)).astype("float32")
    qat = quantize_model(_twin_relus())
    wrappers = _wrappers(qat)
    # Which of the two is the twin depends on the order the model is rebuilt in.
    first, twin = sorted((wrappers["relu_a"], wrappers["relu_b"]), key=lambda wrapper: bool(wrapper._twin))
    assert twin._twin() is first and not first._twin
    assert twin.output_range()[1] is first.output_range()[1]
    assert wrappers["conv"]._output_sink() is first and wrappers["conv"].output_range() is None
    own = {name: variable.numpy().copy() for name, variable in ((v.path, v) for v in twin.non_trainable_weights)}
    qat(images, training=True)
    assert all(np.array_equal(v.numpy(), own[v.path]) for v in twin.non_trainable_weights), "the twin's own range moved"
    assert float(first.output_range()[1]["max"].numpy()) > 0.0
    probe = keras.Model(qat.inputs, [first.output, twin.output])
    relu_a, relu_b = probe.predict(images, verbose=0)
    np.testing.assert_array_equal(relu_a, relu_b)


def test_with_twins_the_file_is_integer_and_equals_the_qat_model(tmp_path):
    images = np.random.default_rng(1).normal(size=(48, 10, 10, 3)).astype("float32")
    qat = quantize_model(_twin_relus())
    for batch in np.split(images[:32], 2):
        qat(batch, training=True)
    path = tflite_export.convert(qat, str(tmp_path / "twins.tflite"), mode="int8")
    integer, reasons = tflite_export.is_fully_integer(path)
    assert integer, reasons
    keras_out = qat.predict(images[32:], verbose=0)
    step = (keras_out.max() - min(keras_out.min(), 0.0)) / 255.0
    assert np.abs(tflite_export.predict(path, images[32:]) - keras_out).max() < 0.5 * step


def test_links_are_found_again_when_the_model_is_loaded(tmp_path):
    qat = quantize_model(_twin_relus())
    qat.save(str(tmp_path / "twins.keras"))
    loaded = _wrappers(keras.models.load_model(str(tmp_path / "twins.keras")))
    first, twin = sorted((loaded["relu_a"], loaded["relu_b"]), key=lambda wrapper: bool(wrapper._twin))
    assert twin._twin() is first
    assert loaded["conv"]._output_sink() in (first, twin)
    assert isinstance(loaded["conv"]._input_source(), QuantizeLayer)
    assert twin.output_range()[1] is first.output_range()[1]


def test_an_add_knows_the_quantizers_of_both_inputs():
    inputs = keras.Input((6,))
    a = L.Dense(6, name="a")(inputs)
    b = L.Dense(6, name="b")(inputs)
    qat = quantize_model(keras.Model(inputs, L.Add(name="sum")([a, b])))
    wrappers = _wrappers(qat)
    assert [ref() for ref in wrappers["sum"]._input_sources] == [wrappers["a"], wrappers["b"]]


def test_a_tensor_read_only_by_a_concatenation_takes_its_grid_in_inference():
    inputs = keras.Input((6, 6, 3))
    a = L.Conv2D(4, 1, name="only_concat")(inputs)
    b = L.Conv2D(4, 1, name="also_added")(inputs)
    joined = L.Concatenate(name="joined")([a, b])
    qat = quantize_model(keras.Model(inputs, [joined, L.Add(name="other")([b, b])]))
    wrappers = _wrappers(qat)
    concat_range = wrappers["joined"].output_range()
    assert wrappers["only_concat"].output_range()[1] is concat_range[1]
    assert wrappers["also_added"].output_range()[1] is not concat_range[1]
    images = np.random.default_rng(2).normal(size=(16, 6, 6, 3)).astype("float32")
    own = wrappers["only_concat"]._activation_ranges[-1][1]["max"]
    qat(images, training=True)  # training keeps the layer's own range: the concatenation's is empty at first
    assert float(own.numpy()) > 0.0
