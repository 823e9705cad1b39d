"""QAT rounds like the file's int8 MUL, swish, requantization and concatenations (kopt.quantization.file_ops)."""

import keras
import numpy as np

import tflite_export
from kopt.quantization import QuantizeWrapper
from kopt.quantization import bias as bias_lib
from kopt.quantization import file_ops
from kopt.quantization import integer_grid
from kopt.quantization import quantize_model

L = keras.layers


def test_requantize_is_xnnpacks_8_bit_fixed_point_conversion():
    rng = np.random.default_rng(0)
    steps = rng.integers(-255, 256, size=50_000)
    in_scale, out_scale = np.float32(0.04731), np.float32(0.0291)
    result = np.asarray(integer_grid.requantize((steps * in_scale).astype("float32"), in_scale, out_scale))
    multiplier = int(np.rint(np.float32(256.0) * np.float32(in_scale / out_scale)))
    expected = (steps.astype(np.int64) * multiplier + 128) >> 8  # >> floors, as the kernel's shift does
    np.testing.assert_array_equal(np.round(result / out_scale).astype(int), expected)
    exact = np.round(steps * np.float64(in_scale) / np.float64(out_scale))
    assert np.any(exact != expected), "the data never hits a case where the fixed-point conversion differs"


def test_requantized_multiply_rounds_the_integer_product_once_in_float32():
    rng = np.random.default_rng(1)
    a_steps, b_steps = rng.integers(-128, 128, size=50_000), rng.integers(0, 256, size=50_000)
    a_scale, b_scale, out_scale = np.float32(0.0423), np.float32(1 / 256), np.float32(0.0187)
    a, b = (a_steps * a_scale).astype("float32"), (b_steps * b_scale).astype("float32")
    result = np.asarray(integer_grid.requantized_multiply(a, b, a_scale, b_scale, out_scale))
    multiplier = np.float32(np.float32(a_scale * b_scale) / out_scale)
    expected = np.rint((a_steps * b_steps).astype(np.float32) * multiplier)
    np.testing.assert_array_equal(np.round(result / out_scale), expected)


def test_requantized_swish_rounds_the_sigmoid_to_its_fixed_grid_first():
    x_scale, out_scale = np.float32(0.0423), np.float32(0.0231)
    steps = np.arange(-128, 128)
    result = np.asarray(integer_grid.requantized_swish((steps * x_scale).astype("float32"), x_scale, out_scale))
    x = (steps * x_scale).astype(np.float32)
    sigmoid_steps = np.clip(np.rint(1.0 / (1.0 + np.exp(-x.astype(np.float64))) * 256.0), 0, 255)
    expected = np.rint((steps * sigmoid_steps).astype(np.float32) * np.float32(np.float32(x_scale / 256) / out_scale))
    np.testing.assert_array_equal(np.round(result / out_scale), expected)
    assert np.any(np.round(x * (1 / (1 + np.exp(-x))) / out_scale) != expected)


def _squeeze_excite_net():
    """EfficientNet's pieces: swish as an Activation and as a conv's activation, a sigmoid gate and its Multiply."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    x = L.Activation("swish")(L.BatchNormalization()(L.Conv2D(16, 3, padding="same", use_bias=False)(inputs)))
    for _ in range(2):
        y = L.Activation("swish")(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)))
        gate = L.Reshape((1, 1, 16))(L.GlobalAveragePooling2D()(y))
        gate = L.Conv2D(4, 1, activation="swish")(gate)
        gate = L.Conv2D(16, 1, activation="sigmoid")(gate)
        y = L.Multiply()([y, gate])
        x = L.Add()([x, L.BatchNormalization()(L.Conv2D(16, 1, use_bias=False)(y))])
    return keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)))


def _dense_block_net():
    """DenseNet's pieces: padded max pooling and average pooling, each read by a concatenation and a BatchNormalization."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = L.MaxPooling2D()(L.ZeroPadding2D()(x))
    for transition in (True, False):
        for _ in range(2):
            y = L.Conv2D(4, 3, padding="same")(L.ReLU()(L.BatchNormalization()(x)))
            x = L.Concatenate()([x, y])
        if transition:
            x = L.AveragePooling2D(2)(L.Conv2D(8, 1)(L.ReLU()(L.BatchNormalization()(x))))
    return keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(L.ReLU()(L.BatchNormalization()(x)))))


def _calibrated(model, images, steps=3):
    model(images, training=True)
    qat = quantize_model(model)
    for _ in range(steps):
        qat(images, training=True)
    return qat


def test_swish_and_squeeze_excite_tensors_equal_the_files(probe_model, steps_apart, tmp_path, monkeypatch):
    images = np.random.default_rng(2).normal(size=(48, 12, 12, 3)).astype("float32")
    qat = _calibrated(_squeeze_excite_net(), images[:32])
    swish = [
        layer for layer in qat.layers if isinstance(layer, QuantizeWrapper) and isinstance(layer.layer, L.Activation)
    ]
    for layer in swish:
        # A range of the Activation's own for its input would round the producer's tensor
        # a second time; the file reads the producer's grid, and so does QAT.
        own_input_range = layer._activation_ranges[0][0]
        own_input_range["min"].assign(own_input_range["min"] - 0.37)
    gates = [
        layer for layer in qat.layers if isinstance(layer, QuantizeWrapper) and layer.name.startswith("quant_conv2d")
    ]
    gates = [layer for layer in gates if layer.layer.activation.__name__ == "sigmoid"]
    assert len(gates) == 2
    for gate in gates:  # what the Multiply reads: the sigmoid's fixed grid, not a tracked range
        assert float(bias_lib.activation_scale(*gate.output_range())) == 1 / 256
    probe = probe_model(qat)
    path = tflite_export.convert(probe, str(tmp_path / "se.tflite"), mode="int8")
    apart = steps_apart(probe, path, images[32:])
    assert len(apart) > 15
    np.testing.assert_array_equal(apart, 0.0)
    monkeypatch.setattr(file_ops, "kernel_scales", lambda *args: None)
    monkeypatch.setattr(file_ops, "integer_op", lambda wrapper, inputs: None)
    assert steps_apart(probe, path, images[32:]).max() >= 1.0


def test_pooled_tensors_read_by_a_concatenation_take_its_grid_for_every_reader(probe_model, steps_apart, tmp_path):
    images = np.random.default_rng(3).uniform(-1, 1, size=(48, 16, 16, 3)).astype("float32")
    qat = _calibrated(_dense_block_net(), images[:32])
    wrappers = [layer for layer in qat.layers if isinstance(layer, QuantizeWrapper)]
    pool, average = _wrapper_of(qat, L.MaxPooling2D), _wrapper_of(qat, L.AveragePooling2D)
    concats = [layer for layer in wrappers if isinstance(layer.layer, L.Concatenate)]
    assert pool.output_range()[1] is concats[0].output_range()[1]
    assert average.output_range()[1] is concats[2].output_range()[1]
    path = tflite_export.convert(qat, str(tmp_path / "dense.tflite"), mode="int8")
    np.testing.assert_array_equal(steps_apart(qat, path, images[32:]), 0.0)
    # Tensor by tensor, but for the average pooling: as a model output it keeps its
    # input's grid in the file, and only its readers see the concatenation's.
    probe = probe_model(qat)
    probe = keras.Model(probe.inputs, [t for t in probe.outputs if t is not average.output])
    probe_path = tflite_export.convert(probe, str(tmp_path / "probe.tflite"), mode="int8")
    apart = steps_apart(probe, probe_path, images[32:])
    assert len(apart) > 15
    np.testing.assert_array_equal(apart, 0.0)
    qat.save(str(tmp_path / "dense.keras"))
    loaded = keras.models.load_model(str(tmp_path / "dense.keras"))
    np.testing.assert_array_equal(steps_apart(loaded, path, images[32:]), 0.0)


def _reduction_cell_net():
    """NASNet's reduction cell: a padded average pooling added to a strided convolution of the same tensor."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    h = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(inputs))
    pooled = L.AveragePooling2D(3, strides=2)(L.ZeroPadding2D(((0, 1), (0, 1)))(h))
    branch = L.BatchNormalization()(L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(L.ReLU()(h)))
    x = L.Add()([pooled, branch])
    return keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(L.ReLU()(x))))


def test_an_add_reads_an_average_pooling_on_the_pooled_inputs_grid(probe_model, steps_apart, tmp_path):
    images = np.random.default_rng(4).uniform(-1, 1, size=(48, 16, 16, 3)).astype("float32")
    qat = _calibrated(_reduction_cell_net(), images[:32])
    average = _wrapper_of(qat, L.AveragePooling2D)
    # The file's AVERAGE_POOL_2D keeps its input's scale; the Add's integer ADD reads
    # that scale, not the pooling's own (never updated) range variables.
    assert average.output_range()[1] is _wrapper_of(qat, L.Conv2D).output_range()[1]
    path = tflite_export.convert(qat, str(tmp_path / "reduction.tflite"), mode="int8")
    np.testing.assert_array_equal(steps_apart(qat, path, images[32:]), 0.0)
    probe = probe_model(qat)
    probe_path = tflite_export.convert(probe, str(tmp_path / "probe.tflite"), mode="int8")
    apart = steps_apart(probe, probe_path, images[32:])
    assert len(apart) >= 6
    np.testing.assert_array_equal(apart, 0.0)


def test_global_average_pooling_rounds_its_ties_like_the_files_mean(probe_model, steps_apart, tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    x = L.Conv2D(16, 3, strides=2, padding="same")(inputs)
    pooled = L.GlobalAveragePooling2D(keepdims=True)(x)
    model = keras.Model(inputs, L.Conv2D(8, 1)(pooled))
    images = np.random.default_rng(6).normal(size=(96, 4, 4, 3)).astype("float32")
    qat = _calibrated(model, images[:32])
    pool, conv = _wrapper_of(qat, L.GlobalAveragePooling2D), _wrapper_of(qat, L.Conv2D)
    # The pooling's range made its input's: the scales' ratio is 1, so a sum of four
    # integers over four is a tie half the time it is not whole.
    for name in ("min", "max"):
        pool._output_ranges[0][name].assign(conv.output_range()[1][name])
    probe = probe_model(qat)
    path = tflite_export.convert(probe, str(tmp_path / "mean.tflite"), mode="int8")
    np.testing.assert_array_equal(steps_apart(probe, path, images[32:]), 0.0)
    monkeypatch.setattr(file_ops, "integer_op", lambda wrapper, inputs: None)
    assert steps_apart(probe, path, images[32:]).max() >= 1.0


def test_a_keras_ops_addition_read_by_a_relu_is_rounded_once_on_the_relus_grid(probe_model, steps_apart, tmp_path):
    """MobileNetV3's hard sigmoid, ``relu6(x + 3) * (1 / 6)``: the file fuses the ReLU6 into the int8 ADD."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same")(inputs)
    wide = keras.initializers.RandomNormal(stddev=4.0)  # x + 3 well outside [0, 6]: its own grid would differ
    gate = L.Conv2D(8, 1, kernel_initializer=wide)(L.GlobalAveragePooling2D(keepdims=True)(x))
    gate = L.ReLU(6.0)(gate + 3.0) * (1.0 / 6.0)
    model = keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(L.Multiply()([x, gate]))))
    images = np.random.default_rng(7).normal(size=(96, 8, 8, 3)).astype("float32") * 2
    qat = _calibrated(model, images[:32])
    quantize_layers = [layer.name for layer in qat.layers if type(layer).__name__ == "QuantizeLayer"]
    assert not any("add" in name for name in quantize_layers), quantize_layers  # no second grid before the ReLU
    assert any("multiply" in name for name in quantize_layers)  # the product by 1/6 keeps its own
    probe = probe_model(qat)
    path = tflite_export.convert(probe, str(tmp_path / "gate.tflite"), mode="int8")
    apart = steps_apart(probe, path, images[32:])
    assert len(apart) >= 4
    np.testing.assert_array_equal(apart, 0.0)


def test_an_unfolded_batch_normalization_fuses_the_relu_after_it():
    inputs = keras.Input((8, 8, 4))
    x = L.ReLU()(L.BatchNormalization()(L.MaxPooling2D()(inputs)))
    qat = quantize_model(keras.Model(inputs, L.Conv2D(2, 1)(x)))
    normalization = _wrapper_of(qat, L.DepthwiseConv2D)
    assert not normalization.quantize_config.get_activations_and_quantizers(normalization.layer)
    assert normalization._output_sink() is _wrapper_of(qat, L.ReLU)


def _wrapper_of(model, layer_class):
    """The first QuantizeWrapper of ``model`` around a ``layer_class``."""
    return next(
        layer for layer in model.layers if isinstance(layer, QuantizeWrapper) and isinstance(layer.layer, layer_class)
    )
