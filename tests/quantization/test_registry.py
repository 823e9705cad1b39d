"""kopt.quantization.registry: the table of built-in layers, Bits and the depthwise quantizer."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.quantization import quantize_model
from kopt.quantization.quantize_config import DefaultQuantizeConfig
from kopt.quantization.quantize_config import NoOpQuantizeConfig
from kopt.quantization.quantizers import FixedRangeQuantizer
from kopt.quantization.quantizers import LastValueQuantizer
from kopt.quantization.quantizers import MovingAverageQuantizer
from kopt.quantization.registry import Bits
from kopt.quantization.registry import DepthwiseKernelQuantizer
from kopt.quantization.registry import is_passthrough
from kopt.quantization.registry import quantize_config_for
from kopt.quantization.registry import unsupported_message
from kopt.testing import run_serialization_test

L = keras.layers
EIGHT_BIT = Bits()
INT8_WEIGHTS = dict(num_bits=8, symmetric=True, narrow_range=True)


@pytest.mark.parametrize(
    "layer, weight_quantizer",
    [
        (L.Conv1D(2, 3), LastValueQuantizer(per_axis=True, **INT8_WEIGHTS)),
        (L.Conv2D(2, 3), LastValueQuantizer(per_axis=True, **INT8_WEIGHTS)),
        (L.Conv3D(2, 3), LastValueQuantizer(per_axis=False, **INT8_WEIGHTS)),  # CONV_3D is float in TFLite
        (L.Dense(2), LastValueQuantizer(per_axis=False, **INT8_WEIGHTS)),
        (L.DepthwiseConv2D(3), DepthwiseKernelQuantizer()),
    ],
)
def test_weighted_layers_quantize_kernel_and_activation(layer, weight_quantizer):
    config = quantize_config_for(layer, EIGHT_BIT)
    assert isinstance(config, DefaultQuantizeConfig)
    assert config.weight_attrs == ["kernel"] and config.weight_quantizer == weight_quantizer
    assert config.activation_attrs == ["activation"]
    assert config.activation_quantizer == MovingAverageQuantizer(num_bits=8)
    assert not config.quantize_output
    fused = quantize_config_for(layer, EIGHT_BIT, quantize_activation=False)
    assert fused.activation_attrs == [] and fused.weight_quantizer == weight_quantizer


@pytest.mark.parametrize(
    "layer",
    [
        L.Add(), L.Subtract(), L.Multiply(), L.Average(), L.Maximum(), L.Minimum(), L.Concatenate(),
        L.GlobalAveragePooling2D(), L.BatchNormalization(), L.ReLU(), L.ELU(),
        L.UpSampling2D(interpolation="bilinear"),
    ],
    ids=lambda layer: type(layer).__name__,
)  # fmt: skip
def test_output_layers_quantize_their_output(layer):
    config = quantize_config_for(layer, EIGHT_BIT)
    assert config.quantize_output and config.get_output_quantizers(layer) == [MovingAverageQuantizer()]
    assert not config.output_shares_input_range(layer)
    assert isinstance(quantize_config_for(layer, EIGHT_BIT, quantize_activation=False), NoOpQuantizeConfig)


@pytest.mark.parametrize("layer", [L.AveragePooling1D(2), L.AveragePooling2D(2), L.AveragePooling3D(2)])
def test_average_pooling_keeps_its_input_grid(layer):
    # TFLite's AVERAGE_POOL_2D requires one scale for its input and output.
    config = quantize_config_for(layer, EIGHT_BIT)
    assert config.quantize_output and config.output_shares_input_range(layer)


def test_softmax_layer_gets_tflite_fixed_output_grid_in_8_bits_only():
    config = quantize_config_for(L.Softmax(), EIGHT_BIT)
    assert config.get_output_quantizers(None) == [FixedRangeQuantizer(init_min=0.0, init_max=255 / 256)]
    sixteen = quantize_config_for(L.Softmax(), Bits(activations=16, symmetric_activations=True))
    assert sixteen.get_output_quantizers(None) == [
        MovingAverageQuantizer(num_bits=16, symmetric=True, narrow_range=True)
    ]


def test_activation_layers():
    assert is_passthrough(L.Activation("linear"))
    config = quantize_config_for(L.Activation("tanh"), EIGHT_BIT)
    assert config.activation_attrs == ["activation"] and not config.quantize_output
    fused = quantize_config_for(L.Activation("relu"), EIGHT_BIT, quantize_activation=False)
    assert isinstance(fused, NoOpQuantizeConfig)


@pytest.mark.parametrize(
    "layer",
    [
        L.MaxPooling2D(), L.GlobalMaxPooling2D(), L.Flatten(), L.Reshape((4,)), L.Permute((2, 1)), L.Dropout(0.5),
        L.ZeroPadding2D(), L.Cropping2D(), L.UpSampling2D(), L.Identity(), L.RepeatVector(2),
    ],
    ids=lambda layer: type(layer).__name__,
)  # fmt: skip
def test_passthrough_layers_get_no_config(layer):
    assert is_passthrough(layer)
    assert quantize_config_for(layer, EIGHT_BIT) is None


@pytest.mark.parametrize(
    "layer",
    [
        L.GroupNormalization(2),
        L.UnitNormalization(),
        L.ConvLSTM1D(2, 3),
        L.Conv3DTranspose(2, 3),
        L.Lambda(lambda x: x),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_unsupported_layers_get_no_config(layer):
    assert not is_passthrough(layer)
    assert quantize_config_for(layer, EIGHT_BIT) is None


def test_unsupported_message_names_every_layer_and_the_fix():
    message = unsupported_message([L.LayerNormalization(name="norm"), L.UnitNormalization(name="unit")])
    assert "'norm' (LayerNormalization)" in message and "'unit' (UnitNormalization)" in message
    assert "QuantizeConfig" in message and "quantize_annotate_layer" in message
    assert "float_layers=['norm', 'unit']" in message and "--qat_float_layers=norm,unit" in message


def test_bits_choose_the_quantizers():
    assert Bits().weight_quantizer(True) == LastValueQuantizer(per_axis=True, **INT8_WEIGHTS)
    assert Bits(weights=4).weight_quantizer(False) == LastValueQuantizer(num_bits=4, symmetric=True, narrow_range=True)
    assert Bits().depthwise_quantizer() == DepthwiseKernelQuantizer()
    assert Bits(per_axis=False).depthwise_quantizer() == LastValueQuantizer(**INT8_WEIGHTS)
    assert Bits(activations=16, symmetric_activations=True).activation_quantizer() == MovingAverageQuantizer(
        num_bits=16, symmetric=True, narrow_range=True
    )


def test_depthwise_quantizer_gives_each_output_channel_its_own_range():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 4, 2)).astype("float32")
    quantizer = DepthwiseKernelQuantizer()
    layer = L.Layer()
    ranges = quantizer.build(kernel.shape, "depthwise_kernel", layer)
    quantized = keras.ops.convert_to_numpy(quantizer(kernel, True, ranges))
    assert quantized.shape == kernel.shape
    # TFLite's output channel c * multiplier + m is kernel[..., c, m].
    magnitude = np.abs(kernel).reshape(9, 8).max(axis=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ranges["max"]), magnitude, rtol=1e-6)
    for channel in range(4):
        for multiplier in range(2):
            values = quantized[:, :, channel, multiplier]
            step = magnitude[channel * 2 + multiplier] / 127
            np.testing.assert_allclose(values / step, np.round(values / step), atol=1e-3)


def test_depthwise_quantizer_serializes_and_rejects_other_settings():
    run_serialization_test(DepthwiseKernelQuantizer(num_bits=4), init_kwargs={"num_bits": 4})
    with pytest.raises(ValueError, match="per_axis=False"):
        DepthwiseKernelQuantizer(per_axis=False)
    with pytest.raises(ValueError, match="narrow_range=False"):
        DepthwiseKernelQuantizer(narrow_range=False)


def test_augmentation_layers_pass_their_input_through_and_leave_the_file(tmp_path):
    for layer in (L.RandomFlip(), L.RandomRotation(0.1), L.MixUp()):
        assert is_passthrough(layer) and quantize_config_for(layer, EIGHT_BIT) is None
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = L.Rescaling(1 / 255.0)(L.RandomRotation(0.1)(L.RandomFlip("horizontal")(inputs)))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3)(x)))
    qat = quantize_model(keras.Model(inputs, L.Dense(4)(L.GlobalAveragePooling2D()(x))))
    images = (np.random.default_rng(0).random((32, 16, 16, 3)) * 255).astype("float32")
    qat.compile("adam", "mse")
    qat.fit(images, np.zeros((32, 4)), epochs=2, verbose=0)  # augmented while it trains
    path = tflite_export.convert(qat, str(tmp_path / "augmented.tflite"), mode="int8")
    ok, reasons = tflite_export.is_fully_integer(path)
    assert ok, reasons
    checked = tflite_export.verify(path, qat, (images, np.zeros(32, "int64")))
    assert checked["agreement"] == 1.0 and checked["max_abs_diff"] < 1e-6


def test_a_conv3d_model_trains_and_converts(tmp_path):
    # TensorFlow's per-channel fake-quant gradient takes at most 4 axes: a per-channel 5-D kernel crashed the
    # first training step. The kernel now takes one grid, and the file computes CONV_3D in float.
    import warnings

    import numpy as np

    import tflite_export
    from kopt import quantization

    clips = keras.Input((4, 8, 8, 1))
    x = L.GlobalAveragePooling3D()(L.Conv3D(4, 3, activation="relu", name="c3d")(clips))
    model = keras.Model(clips, L.Dense(3, name="logits")(x))
    data = np.random.default_rng(0).normal(size=(32, 4, 8, 8, 1)).astype("float32")
    labels = np.random.default_rng(1).integers(0, 3, 32)
    qat = quantization.quantize_model(model)
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(data, labels, epochs=1, batch_size=16, verbose=0)
    path = str(tmp_path / "c3d.tflite")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tflite_export.convert(qat, path, mode="int8")
    assert any("a Conv3D" in str(w.message) for w in caught)  # the warning says why CONV_3D is float
    report = tflite_export.verify(path, qat, (data, labels))
    assert report["agreement"] >= 0.95 and report["max_abs_diff"] < 0.02, report


def test_a_conv1d_transpose_decoder_folds_its_batch_norm_and_quantizes_fully_integer(tmp_path):
    import numpy as np

    import tflite_export
    from kopt import quantization

    signal = keras.Input((16, 3))
    x = L.Conv1D(6, 3, strides=2, padding="same", name="down")(signal)
    x = L.Conv1DTranspose(4, 3, strides=2, padding="same", name="up")(x)
    x = L.ReLU(name="relu")(L.BatchNormalization(name="up_bn")(x))
    model = keras.Model(signal, L.Dense(3, name="logits")(L.Flatten()(x)))
    data = np.random.default_rng(0).normal(size=(32, 16, 3)).astype("float32")
    model(data, training=True)  # moving statistics away from their initial values
    qat = quantization.quantize_model(model)
    assert type(qat.get_layer("up_bn")).__name__ == "Identity"  # folded into the transposed kernel
    quantization.calibrate(qat, data)
    path = tflite_export.convert(qat, str(tmp_path / "decoder.tflite"), mode="int8")
    assert tflite_export.is_fully_integer(tflite_export.inspect(path))[0]
    labels = np.argmax(qat.predict(data, verbose=0), axis=-1)
    report = tflite_export.verify(path, qat, (data, labels))
    assert report["agreement"] >= 0.95 and report["max_abs_diff"] < 0.05, report
