"""tflite_export.verify / predict / accuracy against a Keras model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tflite_export


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    path = str(tmp_path_factory.mktemp("verify") / "m.tflite")
    tflite_export.convert(model, path)
    rng = np.random.default_rng(1)
    images = rng.normal(size=(100, 6)).astype(np.float32)
    labels = np.argmax(model.predict(images, verbose=0), -1).astype(np.int32)
    labels[:10] = (labels[:10] + 1) % 3  # 10 wrong labels: accuracy is exactly 0.9
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    return model, path, dataset


def test_verify_reports_accuracy_agreement_and_difference(exported):
    model, path, dataset = exported
    result = tflite_export.verify(path, model, dataset, batch_size=7)
    assert result["examples"] == 100
    assert result["agreement"] == 1.0
    assert result["tflite_accuracy"] == pytest.approx(0.9)
    assert result["keras_accuracy"] == pytest.approx(0.9)
    assert result["max_abs_diff"] < 1e-5


def test_accuracy_and_predict_from_bytes(exported):
    model, path, dataset = exported
    assert tflite_export.accuracy(path, dataset) == pytest.approx(0.9)
    with open(path, "rb") as f:
        outputs = tflite_export.predict(f.read(), np.zeros((3, 6), np.float32))
    assert outputs.shape == (3, 3)


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        tflite_export.predict(str(tmp_path / "absent.tflite"), np.zeros((1, 6), np.float32))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"junk" * 10)
    with pytest.raises(ValueError, match="not a valid TFLite flatbuffer"):
        tflite_export.predict(str(junk), np.zeros((1, 6), np.float32))


def test_empty_dataset_is_an_error(exported):
    model, path, _ = exported
    empty = tf.data.Dataset.from_tensor_slices((np.zeros((0, 6), np.float32), np.zeros((0,), np.int32))).batch(4)
    with pytest.raises(ValueError, match="no batches"):
        tflite_export.verify(path, model, empty)


def test_collect_takes_one_pair_of_arrays():
    from tflite_export.verify import collect

    images, labels = collect((np.zeros((3, 2), "float32"), np.array([[0], [1], [2]])))
    assert images.shape == (3, 2) and labels.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="3 images, 2 labels"):
        collect((np.zeros((3, 2), "float32"), np.array([0, 1])))


@pytest.mark.parametrize("activation, threshold", [("sigmoid", 0.5), (None, 0.0)])
def test_a_binary_classifier_is_scored_by_its_threshold(tmp_path, activation, threshold):
    # One score per example: argmax over a single column would call every example
    # class 0, agree with anything, and score the share of negatives as accuracy.
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1, activation=activation)])
    path = tflite_export.convert(model, str(tmp_path / "binary.tflite"))
    images = np.random.default_rng(2).normal(size=(200, 6)).astype(np.float32)
    predicted = (model.predict(images, verbose=0)[:, 0] > threshold).astype(np.int32)
    assert 0.2 < predicted.mean() < 0.8  # both classes predicted
    labels = predicted.copy()
    labels[:20] = 1 - labels[:20]  # 20 wrong labels: accuracy is exactly 0.9
    result = tflite_export.verify(path, model, (images, labels))
    assert result["tflite_accuracy"] == pytest.approx(0.9)
    assert result["keras_accuracy"] == pytest.approx(0.9)
    assert tflite_export.accuracy(path, (images, labels), binary_threshold=threshold) == pytest.approx(0.9)
    # A file whose decisions differ from the model's is caught: the other threshold.
    flipped = tflite_export.verify(path, model, (images, labels), binary_threshold=threshold + 10.0)
    assert flipped["tflite_accuracy"] == pytest.approx(np.mean(labels == 0))
    with pytest.raises(ValueError, match="binary_threshold=0.5 if it is a sigmoid"):
        tflite_export.accuracy(path, (images, labels))


def test_labels_that_do_not_match_the_predictions_are_named(exported):
    model, path, _ = exported
    images = np.zeros((4, 6), np.float32)
    with pytest.raises(ValueError, match=r"labels of shape \(4, 2\) for predictions of shape \(4,\)"):
        tflite_export.verify(path, model, (images, np.zeros((4, 2), np.int32)))
