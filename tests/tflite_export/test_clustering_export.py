"""tflite_export.convert strips kopt.clustering wrappers, baking the shared values in."""

import keras
import numpy as np

from kopt.clustering import cluster_weights
from tflite_export import convert
from tflite_export import predict
from tflite_export.flatbuffer import TFLiteFlatbuffer


def test_clustered_model_converts_with_its_centroid_values(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    model = cluster_weights(keras.Model(inputs, keras.layers.Dense(3, name="fc")(x)), 5, "LINEAR")
    model.save(tmp_path / "clustered.keras")

    for source in (model, str(tmp_path / "clustered.keras")):
        path = convert(source, str(tmp_path / "model.tflite"))
        flatbuffer = TFLiteFlatbuffer(path)
        kernels = [
            flatbuffer.values(flatbuffer.stored_source(op.inputs[1]))
            for op in flatbuffer.ops
            if op.name in ("CONV_2D", "FULLY_CONNECTED")
        ]
        assert [len(np.unique(kernel)) for kernel in kernels] == [5, 5]
        images = np.random.default_rng(1).random((4, 6, 6, 1)).astype("float32")
        np.testing.assert_allclose(predict(path, images), model(images), rtol=1e-4, atol=1e-5)
