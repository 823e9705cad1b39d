"""One compression step: per-layer sparsities reached, zeros kept, reproducible."""

import numpy as np
import pytest

from kopt.auto.fine_tune import prune_and_fine_tune
from kopt.auto.measure import layer_sparsities


def test_step_reaches_each_layer_sparsity_and_keeps_earlier_zeros(trained):
    model, fit, _ = trained
    first = prune_and_fine_tune(model, {"hidden": 0.5}, fit, epochs=1, batch_size=64)
    assert layer_sparsities(first) == pytest.approx({"hidden": 0.5, "head": 0.0}, abs=1e-3)
    second = prune_and_fine_tune(first, {"hidden": 0.75, "head": 0.25}, fit, epochs=1, batch_size=64)
    assert layer_sparsities(second) == pytest.approx({"hidden": 0.75, "head": 0.25}, abs=1e-3)
    zero_before = first.get_layer("hidden").kernel.numpy() == 0
    assert np.all(second.get_layer("hidden").kernel.numpy()[zero_before] == 0)
    # A layer left out keeps its zeros instead of regrowing them.
    third = prune_and_fine_tune(second, {}, fit, epochs=1, batch_size=64)
    assert layer_sparsities(third)["hidden"] == pytest.approx(0.75, abs=1e-3)
    assert layer_sparsities(model) == {"hidden": 0.0, "head": 0.0}


def test_same_seed_same_model_and_random_criterion_differs(trained):
    model, fit, _ = trained
    runs = [prune_and_fine_tune(model, {"hidden": 0.6}, fit, epochs=1, batch_size=64, seed=5) for _ in range(2)]
    for a, b in zip(runs[0].get_weights(), runs[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    chance = prune_and_fine_tune(model, {"hidden": 0.6}, fit, epochs=1, batch_size=64, seed=5, criterion="random")
    assert layer_sparsities(chance)["hidden"] == pytest.approx(0.6, abs=1e-3)
    magnitude_zeros = runs[0].get_layer("hidden").kernel.numpy() == 0
    random_zeros = chance.get_layer("hidden").kernel.numpy() == 0
    assert (magnitude_zeros != random_zeros).mean() > 0.2


@pytest.mark.parametrize("kwargs, text", [({"epochs": 0}, "epochs=0"), ({"batch_size": -1}, "batch_size=-1")])
def test_bad_arguments(trained, kwargs, text):
    model, fit, _ = trained
    with pytest.raises(ValueError, match=text):
        prune_and_fine_tune(model, {"hidden": 0.5}, fit, **kwargs)
    with pytest.raises(ValueError, match="nope"):
        prune_and_fine_tune(model, {"nope": 0.5}, fit)


@pytest.mark.parametrize("batch_norm_batches", [0, 50])
def test_a_candidate_ends_with_the_batch_norm_statistics_of_its_weights(batch_norm_batches):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, name="hidden")(inputs)
    normed = keras.layers.BatchNormalization(name="bn")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(normed))
    rng = np.random.default_rng(0)
    x, y = rng.normal(loc=3.0, size=(64, 6)).astype("float32"), rng.integers(0, 2, 64)
    pruned = prune_and_fine_tune(
        model, {"hidden": 0.5}, (x, y), epochs=1, batch_size=16, batch_norm_batches=batch_norm_batches
    )
    features = keras.ops.convert_to_numpy(keras.Model(pruned.inputs, pruned.get_layer("hidden").output)(x))
    moving = pruned.get_layer("bn").moving_mean.numpy()
    if batch_norm_batches:  # four equal batches: their mean is the mean over every example
        np.testing.assert_allclose(moving, features.mean(axis=0), rtol=1e-4, atol=1e-5)
    else:  # four updates at momentum 0.99 from 0
        assert np.max(np.abs(moving)) < 0.1 * np.max(np.abs(features.mean(axis=0)))
