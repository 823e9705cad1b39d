"""What a classifier's output holds: the loss, metric and predictions for class scores and for one score."""

import keras
import numpy as np
import pytest

from kopt import pruning
from kopt.models import accuracy_metric
from kopt.models import classification_loss
from kopt.models import is_one_score
from kopt.models import output_activation
from kopt.models import outputs_probabilities
from kopt.models import predicted_classes
from kopt.models import two_class_logits

L = keras.layers


def _model(units, *ending):
    return keras.Sequential([keras.Input((4,)), L.Dense(units, name="head"), *ending])


@pytest.mark.parametrize(
    "model, activation",
    [
        (_model(3), None),
        (_model(3, L.Softmax()), "softmax"),
        (_model(1, L.Activation("sigmoid")), "sigmoid"),
        (keras.Sequential([keras.Input((4,)), L.Dense(1, activation="sigmoid")]), "sigmoid"),
        (_model(3, L.Activation("relu")), None),
    ],
)
def test_output_activation_reads_the_last_layer(model, activation):
    assert output_activation(model) == activation
    assert outputs_probabilities(model) == (activation is not None)


def test_a_pruning_wrapper_is_looked_through():
    model = keras.Sequential([keras.Input((4,)), L.Dense(1, activation="sigmoid", name="head")])
    assert output_activation(pruning.prune_low_magnitude(model)) == "sigmoid"


def test_loss_and_metric_follow_the_output():
    logit, sigmoid, softmax = _model(1), _model(1, L.Activation("sigmoid")), _model(3, L.Softmax())
    assert is_one_score(logit) and not is_one_score(softmax)
    for model, kind, from_logits in (
        (logit, "BinaryCrossentropy", True),
        (sigmoid, "BinaryCrossentropy", False),
        (softmax, "SparseCategoricalCrossentropy", False),
        (_model(3), "SparseCategoricalCrossentropy", True),
    ):
        loss = classification_loss(model)
        assert type(loss).__name__ == kind and loss.get_config()["from_logits"] is from_logits
    # A logit of 0.3 predicts class 1; read as a probability it would predict class 0.
    metric = accuracy_metric(logit)
    metric.update_state(np.array([1, 0]), np.array([[0.3], [-0.2]]))
    assert float(metric.result()) == 1.0
    metric = accuracy_metric(sigmoid)
    metric.update_state(np.array([1, 0]), np.array([[0.3], [0.2]]))
    assert float(metric.result()) == 0.5
    assert type(accuracy_metric(softmax)).__name__ == "SparseCategoricalAccuracy"


def test_binary_cross_entropy_trains_on_integer_labels_of_shape_batch():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = _model(1)
    model.compile(keras.optimizers.Adam(0.05), classification_loss(model), metrics=[accuracy_metric(model)])
    history = model.fit(x, y, epochs=20, verbose=0).history
    assert history["accuracy"][-1] > 0.95


def test_predicted_classes_and_two_class_logits():
    assert predicted_classes(np.array([[0.1, 0.7, 0.2]]), probabilities=True).tolist() == [1]
    assert predicted_classes(np.array([[0.3], [-0.1]]), probabilities=False).tolist() == [1, 0]
    assert predicted_classes(np.array([[0.3], [0.6]]), probabilities=True).tolist() == [0, 1]
    two = keras.ops.convert_to_numpy(two_class_logits(np.array([[1.5], [-2.0]], dtype="float32")))
    np.testing.assert_allclose(two, [[0.0, 1.5], [0.0, -2.0]])
    softmax = keras.ops.convert_to_numpy(keras.ops.softmax(two, axis=-1))[:, 1]
    np.testing.assert_allclose(softmax, 1 / (1 + np.exp([-1.5, 2.0])), rtol=1e-6)
    wide = np.ones((2, 3), dtype="float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(two_class_logits(wide)), wide)


def test_the_module_examples_run():
    import doctest

    from kopt.models import scores

    assert doctest.testmod(scores).failed == 0
