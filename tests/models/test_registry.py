"""Building built-in models and loading and checking saved ones."""

import keras
import numpy as np
import pytest

from kopt import ConfigError
from kopt.models import check_classifier
from kopt.models import drops_channel_axis
from kopt.models import get_model
from kopt.models import outputs_probabilities


def test_builtin_by_name():
    assert get_model("small_cnn", (8, 8, 1), 10).output_shape == (None, 10)


def test_loads_a_saved_classifier_with_its_weights(tmp_path):
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    )
    path = str(tmp_path / "clf.keras")
    model.save(path)
    loaded = get_model(path, (8, 8, 1), 10)
    x = np.random.default_rng(0).random((2, 8, 8, 1), np.float32)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert outputs_probabilities(loaded)


@pytest.mark.parametrize(
    "layers, message",
    [
        ([keras.layers.Flatten(), keras.layers.Dense(1)], "not a classifier"),
        ([keras.layers.Dense(10)], "not a classifier"),  # output (8, 8, 10)
    ],
)
def test_non_classification_models_are_refused(tmp_path, layers, message):
    model = keras.Sequential([keras.Input((8, 8, 1))] + layers)
    path = str(tmp_path / "m.keras")
    model.save(path)
    with pytest.raises(ConfigError, match=message) as err:
        get_model(path, (8, 8, 1), 10)
    assert err.value.key == "model" and err.value.value == path


def test_a_one_score_binary_classifier_is_accepted_for_two_classes_only(tmp_path):
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")]
    )
    path = str(tmp_path / "binary.keras")
    model.save(path)
    assert get_model(path, (8, 8, 1), 2).output_shape == (None, 1)
    with pytest.raises(ConfigError, match=r"output shape \(1,\), expected \(3,\) class scores"):
        get_model(path, (8, 8, 1), 3)
    squeezed = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1), keras.layers.Reshape(())])
    with pytest.raises(ConfigError, match=r"output shape \(\), expected \(2,\) class scores; a binary classifier ends"):
        check_classifier(squeezed, (4,), 2)


def test_input_shape_mismatch_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    path = str(tmp_path / "m.keras")
    model.save(path)
    with pytest.raises(ConfigError, match=r"takes inputs of shape \(28, 28, 1\)"):
        get_model(path, (8, 8, 1), 10)


def test_a_model_reading_rows_takes_single_channel_images_without_their_channel_axis(tmp_path):
    rows = keras.Sequential([keras.Input((28, 28)), keras.layers.LSTM(4), keras.layers.Dense(10)])
    path = str(tmp_path / "rows.keras")
    rows.save(path)
    assert get_model(path, (28, 28, 1), 10).input_shape == (None, 28, 28)
    assert drops_channel_axis(rows, (28, 28, 1))
    # Only a trailing axis of 1 is dropped: colour images or another size are refused.
    for shape in ((28, 28, 3), (28, 27, 1)):
        assert not drops_channel_axis(rows, shape)
        with pytest.raises(ConfigError, match=r"takes inputs of shape \(28, 28\)"):
            get_model(path, shape, 10)
    assert not drops_channel_axis(rows, (28, 28))  # the same rank: nothing to drop
    any_length = keras.Sequential([keras.Input((None, 28)), keras.layers.GRU(4), keras.layers.Dense(10)])
    assert drops_channel_axis(any_length, (28, 28, 1))
    image = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    assert not drops_channel_axis(image, (28, 28, 1))


def test_built_in_models_refuse_data_that_is_not_images():
    with pytest.raises(ConfigError, match=r"built-in models take images.*\(24,\)") as err:
        get_model("small_cnn", (24,), 4)
    assert (err.value.key, err.value.value) == ("model", "small_cnn")


def test_bad_model_settings(tmp_path):
    with pytest.raises(ConfigError, match="not a built-in model"):
        get_model("resnet9000", (8, 8, 1), 10)
    with pytest.raises(ConfigError, match="file not found"):
        get_model(str(tmp_path / "missing.keras"), (8, 8, 1), 10)
    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    with pytest.raises(ConfigError, match="not a loadable Keras model file"):
        get_model(str(junk), (8, 8, 1), 10)


def test_multi_output_models_are_refused():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, [keras.layers.Dense(3)(inputs), keras.layers.Dense(3)(inputs)])
    with pytest.raises(ConfigError, match="exactly one input and one output"):
        check_classifier(model, (4,), 3)


def test_outputs_probabilities_reads_the_last_layer():
    logits = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    softmax_layer = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Softmax()])
    assert not outputs_probabilities(logits)
    assert outputs_probabilities(softmax_layer)


def test_outputs_probabilities_looks_through_wrappers():
    class PassThrough(keras.layers.Wrapper):
        def call(self, inputs):
            return self.layer(inputs)

    inputs = keras.Input((4,))
    wrapped = keras.Model(inputs, PassThrough(keras.layers.Dense(3, activation="softmax"))(inputs))
    assert outputs_probabilities(wrapped)


def test_the_module_examples_run():
    import doctest

    from kopt.models import registry

    assert doctest.testmod(registry).failed == 0


def test_a_keras_2_file_is_refused_with_how_to_save_it_so_keras_3_reads_it(tmp_path):
    """tf_keras writes .keras files Keras 3 cannot read (checked with a real tf_keras 2.21 file); its .h5 loads."""
    import json
    import zipfile

    path = tmp_path / "old.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "2.15.0", "date_saved": "2024-01-01"}))
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": "not a list"}}))
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(ConfigError, match=r"saved by Keras 2.15.0 \(tf_keras\), whose .keras files Keras 3 cannot read; "
                                          r"save it from tf_keras as .h5"):  # fmt: skip
        get_model(str(path), (8, 8, 1), 10)
