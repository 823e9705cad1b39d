"""Output channels that pruning emptied: QAT still exports a valid, fully-integer file.

Magnitude pruning at 80% or more zeros whole filters of small layers (a 3x3x1
convolution has 9 weights per filter). Their symmetric per-channel range is
``[-0.0, 0.0]``; before the fix it was widened into an asymmetric ``[0, 1e-6]``, the
converter gave the channel a non-zero zero point, and LiteRT refused the file
("zero_point->data[i] != 0"). These tests zero whole channels of a convolution
and of a depthwise convolution, with and without BatchNormalization, train with
quantization-aware steps so that every range is updated, and check the file.
"""

import keras
import numpy as np
import pytest

import tflite_export
from kopt.pruning import empty_channels
from kopt.quantization import quantize_model
from kopt.quantization import schemes

L = keras.layers
AGREEMENT = 0.995
EMPTY = {"c1": [1, 5], "dw": [2, 6], "c2": [3]}  # layer -> output channels zeroed
SCHEMES = {
    "8bit": lambda: "8bit",
    "pqat": schemes.Default8BitPrunePreserveQuantizeScheme,
    "pcqat": lambda: schemes.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True),
    "pcqat_per_channel": lambda: schemes.Default8BitClusterPreserveQuantizeScheme(
        preserve_sparsity=True, cluster_per_channel=True
    ),
}


def _model(batch_norm):
    inputs = keras.Input((28, 28, 1), name="image")
    x = L.Conv2D(8, 3, strides=2, use_bias=not batch_norm, name="c1")(inputs)
    if batch_norm:
        x = L.BatchNormalization(name="c1_bn")(x)
    x = L.ReLU()(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=not batch_norm, name="dw")(x)
    if batch_norm:
        x = L.BatchNormalization(name="dw_bn")(x)
    x = L.ReLU()(x)
    x = L.Conv2D(16, 3, strides=2, activation="relu", name="c2")(x)
    x = L.Flatten()(x)
    return keras.Model(inputs, L.Dense(10, name="logits")(x), name="empty_channels")


def _channels_last(layer_name, values):
    """``values`` as ``(..., output channels)``; depthwise kernels flattened to ``in * multiplier``."""
    return values.reshape(values.shape[:-2] + (-1,)) if layer_name == "dw" else values


def _kernel(model, layer_name):
    for layer in model.layers:
        if layer.name in (layer_name, f"quant_{layer_name}"):
            return next(w for w in layer.weights if w.path.rsplit("/", 1)[-1] in ("kernel", "depthwise_kernel"))
    raise AssertionError(f"no kernel for {layer_name!r} in {[layer.name for layer in model.layers]}")


def _clustered(values, count=16):
    """``values`` rounded to ``count`` shared values, as a stripped clustered kernel holds."""
    centroids = np.quantile(values, np.linspace(0.0, 1.0, count))
    return centroids[np.argmin(np.abs(values[..., None] - centroids), axis=-1)].astype(values.dtype)


def _empty_the_channels(model, *, cluster=False):
    for layer_name, channels in EMPTY.items():
        kernel = _kernel(model, layer_name)
        values = np.array(kernel.numpy())
        if cluster:
            values = _clustered(values)
        flat = _channels_last(layer_name, values)
        flat[..., channels] = 0.0
        kernel.assign(flat.reshape(values.shape))


def _still_empty(model):
    for layer_name, channels in EMPTY.items():
        flat = _channels_last(layer_name, np.asarray(_kernel(model, layer_name).numpy()))
        flat = flat.reshape(-1, flat.shape[-1])
        assert not flat[:, channels].any(), f"{layer_name}: channels {channels} were refilled by training"


@pytest.fixture(scope="module")
def mnist(mnist_npz):
    data = np.load(mnist_npz)
    x_train = (data["x_train"][:6000, ..., None] / 255.0).astype("float32")
    x_test = (data["x_test"][:1500, ..., None] / 255.0).astype("float32")
    return x_train, data["y_train"][:6000].astype("int64"), x_test, data["y_test"][:1500].astype("int64")


@pytest.fixture(scope="module", params=[False, True], ids=["no_bn", "bn"])
def trained(request, mnist):
    """A float model trained two epochs; every test gets a fresh copy."""
    x_train, y_train, _, _ = mnist
    keras.utils.set_random_seed(0)
    model = _model(request.param)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, batch_size=32, epochs=2, verbose=0)
    return model


def _copy(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


@pytest.mark.slow
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_qat_with_empty_output_channels_exports_a_fully_integer_file_that_agrees(tmp_path, mnist, trained, scheme):
    x_train, y_train, x_test, y_test = mnist
    preserving = scheme != "8bit"
    model = _copy(trained)
    # PQAT/PCQAT take the zeros (and shared values) of the model they wrap.
    _empty_the_channels(model, cluster=scheme.startswith("pcqat"))
    qat = quantize_model(model, scheme=SCHEMES[scheme]())
    qat.compile(
        # A full fine-tuning rate: the model must recover from losing whole filters.
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    qat.fit(x_train[:2000], y_train[:2000], batch_size=32, epochs=1, verbose=0)
    if preserving:
        _still_empty(qat)
    else:
        # Plain QAT refills zeros; empty them again in the
        # trained model, whose activation ranges the steps above have set.
        _empty_the_channels(qat)
    assert empty_channels(qat)["empty"] == sum(len(c) for c in EMPTY.values())

    path = tflite_export.convert(qat, str(tmp_path / f"{scheme}.tflite"), mode="int8")
    report = tflite_export.inspect(path)
    ok, reasons = tflite_export.is_fully_integer(report)
    assert ok, reasons
    for op in report["ops"]:
        if op["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            quantization = op["inputs"][1]["quantization"]
            # TFLite's symmetric int8 weights: zero point 0 and a usable scale in every channel.
            assert set(quantization["zero_point"]) == {0}, op
            assert min(quantization["scale"]) > 1e-4, op
    result = tflite_export.verify(path, qat, [(x_test, y_test)])
    assert result["keras_accuracy"] > 0.8, result  # trained, so agreement means something
    assert result["agreement"] >= AGREEMENT, result
