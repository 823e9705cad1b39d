"""Average pooling's int8 input and output share one scale, read from the producer's range.

The converter demands bit-identical scales around AVERAGE_POOL_2D. A range of its
own that tracks the same values ends a few ulps away (DenseNet121's transitions),
and the conversion failed with "quantization parameters violate the same scale
constraint"; where they differed more, the converter added a requantizing QUANTIZE
op after each pooling. Reusing the producer's range makes them the same variables.
"""

import keras
import numpy as np

import tflite_export
from kopt.quantization import quantize_model

L = keras.layers


def _densenet_transition():
    inputs = keras.Input((16, 16, 8))
    x = L.BatchNormalization()(inputs)
    x = L.ReLU()(x)
    x = L.Conv2D(8, 1, use_bias=False)(x)
    x = L.AveragePooling2D(2)(x)  # DenseNet's transition: conv then 2x2 average pooling
    x = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = L.AveragePooling2D(2)(x)  # after a fused ReLU
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(4)(x))


def test_average_pooling_keeps_the_exact_scale_of_its_input_in_the_file(tmp_path):
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).normal(size=(64, 16, 16, 8)).astype("float32")
    qat = quantize_model(_densenet_transition())
    qat.compile("adam", "mse")
    qat.fit(images, np.zeros((64, 4), "float32"), batch_size=16, epochs=2, verbose=0)
    path = tflite_export.convert(qat, str(tmp_path / "pool.tflite"), mode="int8")
    inspection = tflite_export.inspect(path)
    integer, reasons = tflite_export.is_fully_integer(inspection)
    assert integer, reasons
    pools = [op for op in inspection["ops"] if op["op"] == "AVERAGE_POOL_2D"]
    assert len(pools) == 2
    for op in pools:
        assert op["inputs"][0]["quantization"] == op["outputs"][0]["quantization"]
    # With a range of its own, each pooling was followed by a requantizing QUANTIZE op.
    assert [op["op"] for op in inspection["ops"]].count("QUANTIZE") == 1  # the model input only
    file_out = tflite_export.predict(path, images[:32])
    keras_out = qat.predict(images[:32], verbose=0)
    assert np.abs(file_out - keras_out).max() <= 0.1 * np.ptp(keras_out)


def test_max_pools_beside_an_average_pool_of_one_tensor_stay_int8(tmp_path):
    # NASNetMobile's stem reduction cell pads one tensor and reads it with two
    # identical max pools (merged by the converter) and an average pool. With a
    # FakeQuant after the average pool, the converter kept the ADDs reading the
    # max pools in float; the exported graph now leaves that rounding to it.
    base = keras.applications.NASNetMobile(weights=None, input_shape=(32, 32, 3), classes=10)
    outputs = [base.get_layer(name).output for name in ("reduction_add4_stem_1", "reduction_left3_stem_1")]
    qat = quantize_model(keras.Model(base.inputs, outputs))
    images = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype("float32")
    qat(images, training=True)
    path = tflite_export.convert(qat, str(tmp_path / "stem.tflite"), mode="int8")
    integer, reasons = tflite_export.is_fully_integer(path)
    assert integer, reasons
    keras_outputs = qat.predict(images, verbose=0)
    file_outputs = tflite_export.predict(path, images)
    for keras_out in keras_outputs:
        step = (keras_out.max() - min(keras_out.min(), 0.0)) / 255.0
        apart = min(np.abs(f - keras_out).max() for f in file_outputs if f.shape == keras_out.shape)
        assert apart <= 1.01 * step, (apart, step)


def test_average_pooling_rounds_its_ties_like_tflite(tmp_path):
    # TFLite averages the raw int8 values and rounds half away from zero; even
    # windows (2x2, or a "same" 3x3 at the border) hit ties often. Before QAT
    # did the same, 1-4% of pooled values were one step off the file's.
    from kopt.quantization import QuantizeWrapper
    from kopt.quantization.bias import activation_scale

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = L.Add()([L.Conv2D(6, 3, padding="same")(inputs), L.Conv2D(6, 3, padding="same")(inputs)])
    same = L.AveragePooling2D(3, strides=1, padding="same", name="same")(x)
    even = L.AveragePooling2D(2, name="even")(x)
    qat = quantize_model(keras.Model(inputs, [L.ReLU()(same), L.ReLU()(even)]))
    images = np.random.default_rng(0).normal(size=(64, 8, 8, 3)).astype("float32")
    qat(images, training=True)
    pools = [
        layer for layer in qat.layers if isinstance(layer, QuantizeWrapper) and layer.layer.name in ("same", "even")
    ]
    probe = keras.Model(qat.inputs, [layer.output for layer in pools])
    path = tflite_export.convert(probe, str(tmp_path / "pools.tflite"), mode="int8")
    file_outputs = tflite_export.predict(path, images)
    for layer, keras_out in zip(pools, probe.predict(images, verbose=0)):
        file_out = next(out for out in file_outputs if out.shape == keras_out.shape)  # the two shapes differ
        step = float(activation_scale(*layer._source_range()))
        np.testing.assert_array_equal(np.round(keras_out / step), np.round(file_out / step), err_msg=layer.name)
