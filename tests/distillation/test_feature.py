"""FeatureAdapter, feature extractors, and hint distillation inside the Distiller."""

import keras
import numpy as np
import pytest

from kopt.distillation import Distiller
from kopt.distillation import FeatureAdapter
from kopt.distillation import feature_extractor
from kopt.distillation import feature_mse
from kopt.testing import run_layer_test
from kopt.testing import run_model_saving_test


@pytest.mark.parametrize(
    "target_shape, input_shape, trainable",
    [((4, 4, 8), (2, 8, 8, 3), 2), ((8, 8, 8), (2, 8, 8, 3), 2), ((6,), (2, 10), 2)],
)
def test_adapter_layer(target_shape, input_shape, trainable):
    data = np.random.default_rng(0).normal(size=input_shape).astype("float32")
    run_layer_test(
        FeatureAdapter,
        {"target_shape": target_shape},
        data,
        expected_output_shape=(input_shape[0], *target_shape),
        expected_num_trainable_weights=trainable,
    )


def test_identity_adapter_and_bad_shapes():
    adapter = FeatureAdapter((3,), identity=True)
    data = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(adapter(data)), data)
    assert not adapter.weights
    with pytest.raises(ValueError, match="Received: input_shape="):
        FeatureAdapter((4,), identity=True).build((2, 3))
    with pytest.raises(ValueError, match="Received: input_shape="):
        FeatureAdapter((4, 4, 2)).build((2, 3))
    with pytest.raises(ValueError, match="Received: target_shape="):
        FeatureAdapter((4, 4))


def test_feature_mse_and_extractor_errors():
    assert float(feature_mse(np.full((2, 2), 3.0), np.ones((2, 2)))) == 4.0
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="fc")])
    with pytest.raises(ValueError, match="Received: student_layer='nope'"):
        feature_extractor(model, ["nope"], who="student")


def _cnn(filters, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="hint")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def test_hint_distillation_learns_an_adapter_and_saves():
    student, teacher = _cnn(2, 1), _cnn(12, 2)
    distiller = Distiller(student, teacher, feature_layers=[("hint", "hint")], feature_weight=0.5)
    assert len(distiller.adapters) == 1 and distiller.adapters[0].projection.filters == 12
    distiller.compile(keras.optimizers.Adam(0.02))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 8, 8, 1)).astype("float32"), rng.integers(0, 3, size=32)
    adapter_before = [w.numpy().copy() for w in distiller.adapters[0].weights]
    teacher_before = [w.numpy().copy() for w in teacher.weights]
    history = distiller.fit(x, y, batch_size=8, epochs=3, verbose=0).history
    assert history["feature_loss"][-1] < history["feature_loss"][0]
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(adapter_before, distiller.adapters[0].weights))
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(teacher_before, teacher.weights))
    # The saved Distiller holds each weight once (student, teacher, adapter) and restores it.
    assert len(distiller.weights) == len(student.weights) + len(teacher.weights) + 2
    loaded = run_model_saving_test(distiller, x)
    np.testing.assert_allclose(loaded.adapters[0].weights[0].numpy(), distiller.adapters[0].weights[0].numpy())


def test_cached_logits_with_features_is_refused():
    distiller = Distiller(_cnn(2, 1), _cnn(12, 2), feature_layers=[("hint", "hint")])
    distiller.compile("adam")
    x = np.zeros((4, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match="feature_layers"):
        distiller.fit(x, {"labels": np.zeros(4), "teacher_logits": np.zeros((4, 3), "float32")}, verbose=0)
