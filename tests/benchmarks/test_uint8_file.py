"""The QU8 twin of a per-tensor int8 file: every int8 tensor unsigned, the same numbers out."""

import os
import sys

import keras
import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import int8_latency  # noqa: E402
from benchmarks import uint8_file  # noqa: E402


def _outputs(path, images, xnnpack):
    from benchmarks.core.latency import ready_interpreter

    interpreter = ready_interpreter(path, xnnpack=xnnpack)
    outputs = []
    for image in images:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy())
    return np.concatenate(outputs)


def _output_quantum(path):
    """The scale of the int8 tensor that the output DEQUANTIZE reads: one step of the output."""
    from benchmarks.core.latency import ready_interpreter

    interpreter = ready_interpreter(path, xnnpack=False)
    (dequantize,) = [op for op in interpreter._get_ops_details() if op["op_name"] == "DEQUANTIZE"]
    return interpreter.get_tensor_details()[dequantize["inputs"][0]]["quantization"][0]


def _tensor_types(path):
    from benchmarks.core.latency import ready_interpreter

    return {detail["dtype"] for detail in ready_interpreter(path, xnnpack=False).get_tensor_details()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((12, 12, 3)), keras.layers.Conv2D(8, 3, activation="relu6"),
        keras.layers.DepthwiseConv2D(3, padding="same"), keras.layers.Conv2D(8, 1), keras.layers.BatchNormalization(),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4),
    ])  # fmt: skip
    images = np.random.default_rng(0).random((16, 12, 12, 3), np.float32)
    workdir = tmp_path_factory.mktemp("uint8")
    per_tensor = str(workdir / "per_tensor.tflite")
    int8_latency._convert_per_tensor(model, images, per_tensor)
    return model, images, workdir, per_tensor


def test_every_int8_tensor_becomes_uint8_and_the_outputs_are_the_same(files):
    _, images, workdir, per_tensor = files
    unsigned = str(workdir / "unsigned.tflite")
    assert uint8_file.to_uint8(per_tensor, unsigned) > 0
    assert np.int8 in _tensor_types(per_tensor)
    types = _tensor_types(unsigned)
    assert np.int8 not in types and np.uint8 in types
    signed_out = _outputs(per_tensor, images, xnnpack=True)
    assert np.abs(signed_out).max() > 0  # a test of equal zeros would prove nothing
    quantum = _output_quantum(per_tensor)
    for xnnpack in (True, False):
        # The same integers shifted by 128: the unsigned kernels may round a value to the next step, no further.
        difference = np.abs(_outputs(unsigned, images, xnnpack) - signed_out)
        assert difference.max() <= quantum * 1.01, (xnnpack, difference.max(), quantum)
        assert np.mean(difference > quantum / 2) < 0.25


def test_a_per_channel_file_is_refused_with_the_tensor_named(files, tmp_path):
    import tflite_export

    model, images, _, _ = files
    per_channel = tflite_export.convert(model, str(tmp_path / "pc.tflite"), mode="int8", representative_dataset=images)
    with pytest.raises(ValueError, match=r"tensor '.*' of .* has \d+ zero points: uint8 needs one"):
        uint8_file.to_uint8(per_channel, str(tmp_path / "u.tflite"))
    assert not os.path.exists(tmp_path / "u.tflite")


def test_a_float_file_has_nothing_to_rewrite(files, tmp_path):
    import tflite_export

    model, _, _, _ = files
    path = tflite_export.convert(model, str(tmp_path / "f.tflite"))
    with pytest.raises(ValueError, match="has no int8 tensor to rewrite"):
        uint8_file.to_uint8(path, str(tmp_path / "u.tflite"))
