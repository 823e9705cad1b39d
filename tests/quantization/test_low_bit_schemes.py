"""Binary and ternary schemes end to end: low-bit layers, strip, .keras, the int8 file, pruning, distillation."""

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import tflite_export
from kopt import pruning
from kopt.distillation import Distiller
from kopt.quantization import BinaryQuantizeScheme
from kopt.quantization import BinaryWeightQuantizer
from kopt.quantization import QuantizeLayer
from kopt.quantization import QuantizeWrapper
from kopt.quantization import TernaryQuantizeScheme
from kopt.quantization import TernaryWeightQuantizer
from kopt.quantization import quantize_model
from kopt.quantization import schemes
from kopt.quantization import strip_quantization
from tflite_export.flatbuffer import TFLiteFlatbuffer

L = keras.layers
LEVELS = {"binary": 2, "ternary": 3}


def _cnn(seed=0):
    """Conv -> Conv+BN -> DepthwiseConv -> Dense -> Dense: first and last stay 8-bit, three kernels go low-bit."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((10, 10, 2))
    x = L.Conv2D(8, 3, activation="relu", name="conv2d")(inputs)
    x = L.Conv2D(16, 3, use_bias=False, name="conv2d_1")(x)
    x = L.BatchNormalization(name="batch_normalization")(x)
    x = L.ReLU(name="re_lu")(x)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu", name="depthwise_conv2d")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(12, activation="relu", name="dense")(x)
    return keras.Model(inputs, L.Dense(4, name="dense_1")(x))


def _fit(model, seed=0, epochs=1):
    rng = np.random.default_rng(seed)
    x = rng.random((64, 10, 10, 2)).astype("float32")
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, rng.integers(0, 4, size=64), batch_size=16, epochs=epochs, verbose=0)
    return x


def _kernel_channels(layer):
    """A stripped layer's kernel as ``(weights, output channels)``."""
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    if isinstance(layer, L.DepthwiseConv2D):
        return kernel.reshape(-1, kernel.shape[-2] * kernel.shape[-1])
    return kernel.reshape(-1, kernel.shape[-1])


def _file_kernels(path):
    """``{op index: (op name, int8 kernel as (output channels, weights))}`` of the file's weighted ops."""
    flatbuffer = TFLiteFlatbuffer(path)
    kernels = {}
    for op in flatbuffer.ops:
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            values = flatbuffer.values(op.inputs[1])
            axis = 3 if op.name == "DEPTHWISE_CONV_2D" else 0  # TFLite's output-channel axis
            kernels[op.index] = (op.name, np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1))
    return kernels


def test_names_and_defaults():
    assert isinstance(schemes.get("binary"), BinaryQuantizeScheme)
    assert isinstance(schemes.get("ternary"), TernaryQuantizeScheme)
    assert repr(BinaryQuantizeScheme()) == (
        "BinaryQuantizeScheme(first_and_last_8bit=True, scale='mean', clip_value=1.0, num_bits_activation=8)"
    )
    ternary = TernaryQuantizeScheme(scale="learned", threshold_ratio=0.6, preserve_sparsity=True)
    assert TernaryQuantizeScheme.from_config(ternary.get_config()).get_config() == ternary.get_config()
    assert (ternary.export_mode, TernaryQuantizeScheme(num_bits_activation=None).export_mode) == ("int8", "dynamic")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BinaryQuantizeScheme(first_and_last_8bit="no"), "first_and_last_8bit='no'"),
        (lambda: BinaryQuantizeScheme(scale="median"), "scale='median'"),
        (lambda: BinaryQuantizeScheme(clip_value=0), "clip_value=0"),
        (lambda: BinaryQuantizeScheme(num_bits_activation=4), "num_bits_activation=4"),
        (lambda: TernaryQuantizeScheme(threshold_ratio=1.5), "threshold_ratio=1.5"),
        (lambda: TernaryQuantizeScheme(preserve_sparsity=1), "preserve_sparsity=1"),
        (lambda: schemes.get("1bit"), "scheme='1bit'"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("ends_8bit", [True, False])
def test_first_and_last_layer_stay_8bit_by_default(ends_8bit):
    qat = quantize_model(_cnn(), scheme=BinaryQuantizeScheme(first_and_last_8bit=ends_8bit))
    kinds = {
        layer.layer.name: type(layer.quantize_config.weight_quantizer).__name__
        for layer in qat.layers
        if isinstance(layer, QuantizeWrapper) and layer.quantize_config.weight_attrs
    }
    ends = "LastValueQuantizer" if ends_8bit else "BinaryWeightQuantizer"
    assert kinds == {
        "conv2d": ends,
        "conv2d_1": "BinaryWeightQuantizer",
        "depthwise_conv2d": "BinaryWeightQuantizer",
        "dense": "BinaryWeightQuantizer",
        "dense_1": ends,
    }


@pytest.mark.parametrize("name", ["binary", "ternary"])
def test_stripped_model_and_int8_file_hold_two_or_three_values_per_channel(name, tmp_path):
    qat = quantize_model(_cnn(), scheme=name)
    x = _fit(qat)
    stripped = strip_quantization(qat)
    low_bit = ["conv2d_1", "depthwise_conv2d", "dense"]
    for layer_name in low_bit:
        channels = _kernel_channels(stripped.get_layer(layer_name))
        counts = [len(np.unique(channels[:, c])) for c in range(channels.shape[1])]
        assert max(counts) <= LEVELS[name] and min(counts) >= LEVELS[name] - 1, (layer_name, counts)
    path = tflite_export.convert(qat, str(tmp_path / f"{name}.tflite"), mode="int8")
    kernels = list(_file_kernels(path).values())
    assert [op for op, _ in kernels] == [
        "CONV_2D",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "FULLY_CONNECTED",
    ]
    for op, channels in kernels[1:4]:
        assert channels.dtype == np.int8
        for channel in channels:
            values = np.unique(channel)
            nonzero = np.unique(np.abs(values[values != 0]))
            assert len(values) <= LEVELS[name] and len(nonzero) == 1, (op, values)  # {-k, k} or {-k, 0, k}
            if op != "FULLY_CONNECTED":  # per-channel scales: the codes are exactly the int8 ends
                assert set(values) <= {-127, 0, 127} and values[-1] == 127, (op, values)
    assert max(len(np.unique(channel)) for channel in kernels[0][1]) > LEVELS[name]  # the 8-bit first layer
    interpreter = Interpreter(model_path=path)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    outputs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(outputs, qat.predict(x, verbose=0), atol=1e-5)


def test_learned_scale_model_saves_and_loads_as_keras_without_custom_objects(tmp_path):
    qat = quantize_model(_cnn(), scheme=TernaryQuantizeScheme(scale="learned"))
    x = _fit(qat)
    path = str(tmp_path / "ternary.keras")
    qat.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), qat.predict(x, verbose=0))
    quantizers = [
        layer.quantize_config.weight_quantizer for layer in loaded.layers if isinstance(layer, QuantizeWrapper)
    ]
    assert sum(isinstance(q, TernaryWeightQuantizer) and q.scale == "learned" for q in quantizers) == 3
    _fit(loaded, seed=1)  # and it resumes training


def test_float_activations_quantize_weights_only_and_export_dynamic_range(tmp_path):
    qat = quantize_model(_cnn(), scheme=BinaryQuantizeScheme(num_bits_activation=None))
    assert not any(isinstance(layer, QuantizeLayer) for layer in qat.layers)
    wrappers = [layer for layer in qat.layers if isinstance(layer, QuantizeWrapper)]
    assert all(not layer.quantize_config.get_activations_and_quantizers(layer.layer) for layer in wrappers)
    x = _fit(qat)
    path = tflite_export.convert(strip_quantization(qat), str(tmp_path / "dynamic.tflite"), mode="dynamic")
    np.testing.assert_allclose(tflite_export.predict(path, x), qat.predict(x, verbose=0), atol=0.05)
    # The dynamic-range converter stores kernels of over 1,024 weights as int8, with the same two values.
    int8_kernels = [(op, channels) for op, channels in _file_kernels(path).values() if channels.dtype == np.int8]
    assert [op for op, _ in int8_kernels] == ["CONV_2D", "FULLY_CONNECTED"]  # 1,152 and 6,144 weights
    for _, channels in int8_kernels:
        assert max(len(np.unique(channel)) for channel in channels) == 2


def test_pruned_then_ternary_keeps_every_zero_in_the_model_and_the_file(tmp_path):
    model = _cnn()
    schedule = pruning.ConstantSparsity(0.6, begin_step=0)
    # Depthwise kernels are pruned only when named: name them, so that every kernel has zeros to keep.
    depthwise = {layer.name: schedule for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)}
    assert depthwise
    pruned = pruning.prune_low_magnitude(model, pruning_schedule=schedule, layer_schedules=depthwise)
    rng = np.random.default_rng(0)
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(
        rng.random((32, 10, 10, 2)),
        rng.integers(0, 4, 32),
        epochs=1,
        verbose=0,
        callbacks=[pruning.UpdatePruningStep()],
    )
    stripped = pruning.strip_pruning(pruned)
    zeros = {
        layer.name: keras.ops.convert_to_numpy(layer.kernel) == 0
        for layer in stripped.layers
        if hasattr(layer, "kernel")
    }
    assert all(mask.mean() > 0.5 for mask in zeros.values())
    qat = quantize_model(stripped, scheme=TernaryQuantizeScheme(preserve_sparsity=True))
    _fit(qat, epochs=2)
    after = strip_quantization(qat)
    for name, mask in zeros.items():
        kernel = keras.ops.convert_to_numpy(after.get_layer(name).kernel)
        assert np.all(kernel[mask] == 0.0), name  # the 8-bit ends keep theirs too
    path = tflite_export.convert(qat, str(tmp_path / "pruned_ternary.tflite"), mode="int8")
    file_zeros = sum(int((channels == 0).sum()) for _, channels in _file_kernels(path).values())
    assert file_zeros >= sum(int(mask.sum()) for mask in zeros.values())


def test_binary_student_learns_from_a_float_teacher():
    teacher = _cnn(seed=1)
    student = quantize_model(_cnn(seed=2), scheme="binary")
    # Same architecture: the QAT copy counts its ranges as parameters, which makes it the "larger".
    distiller = Distiller(student, teacher, alpha=0.1, temperature=4.0, allow_larger_student=True)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    history = distiller.fit(rng.random((64, 10, 10, 2)), rng.integers(0, 4, 64), batch_size=16, epochs=2, verbose=0)
    assert np.isfinite(history.history["distillation_loss"]).all()
    assert history.history["distillation_loss"][-1] < history.history["distillation_loss"][0]
    channels = _kernel_channels(strip_quantization(distiller.student).get_layer("dense"))
    assert max(len(np.unique(channels[:, c])) for c in range(channels.shape[1])) == 2


def test_binary_weight_quantizer_is_used_for_every_supported_kernel_kind():
    qat = quantize_model(_cnn(), scheme=BinaryQuantizeScheme(first_and_last_8bit=False))
    quantizers = {
        layer.layer.name: layer.quantize_config.weight_quantizer
        for layer in qat.layers
        if isinstance(layer, QuantizeWrapper)
    }
    assert all(
        isinstance(quantizers[name], BinaryWeightQuantizer) for name in ("conv2d", "depthwise_conv2d", "dense_1")
    )
    assert (quantizers["conv2d"].channel_axes, quantizers["conv2d"].per_axis) == (1, True)
    assert (quantizers["depthwise_conv2d"].channel_axes, quantizers["dense_1"].per_axis) == (2, False)
