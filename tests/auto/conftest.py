"""A small trained classifier on separable synthetic data, shared by the kopt.auto tests."""

import keras
import numpy as np
import pytest


def make_data(count=1200, features=16, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(classes, features)) * 2.0
    labels = rng.integers(0, classes, size=count)
    images = (prototypes[labels] + rng.normal(size=(count, features))).astype("float32")
    return images, labels.astype("int64")


def make_model(features=16, classes=4):
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(64, activation="relu", name="hidden"),
            keras.layers.Dense(classes, name="head"),
        ]
    )


@pytest.fixture(scope="module")
def trained():
    """``(model, (x_fit, y_fit), (x_val, y_val))``: a float model trained 3 epochs."""
    images, labels = make_data()
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images[:1000], labels[:1000], epochs=3, batch_size=32, verbose=0)
    return model, (images[:1000], labels[:1000]), (images[1000:], labels[1000:])


@pytest.fixture(scope="module")
def fresh_model():
    """A factory of untrained models shaped like ``trained``'s."""
    return make_model
