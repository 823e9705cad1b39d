import keras
import numpy as np
import pytest

from kopt.utils.cloning import clone_graph_model
from kopt.utils.cloning import copy_layer


def test_copy_layer_copies_weights_without_sharing_variables():
    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    copy = copy_layer(dense)
    np.testing.assert_array_equal(copy.kernel.numpy(), dense.kernel.numpy())
    copy.kernel.assign(np.zeros((4, 3), "float32"))
    assert np.any(dense.kernel.numpy() != 0)


def test_copy_layer_takes_given_weights():
    dense = keras.layers.Dense(2)
    dense.build((None, 2))
    copy = copy_layer(dense, weights=[np.eye(2, dtype="float32"), np.ones(2, "float32")])
    np.testing.assert_array_equal(copy.kernel.numpy(), np.eye(2))


def test_clone_graph_model_applies_layer_fn_and_keeps_outputs():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(3)(inputs)))
    seen = []

    def layer_fn(layer):
        seen.append(layer.name)
        return copy_layer(layer)

    clone = clone_graph_model(model, layer_fn, action="test", advice="none")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert len(seen) == 2


def test_clone_graph_model_refuses_subclassed_model_with_advice():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(ValueError, match=r"Cannot frob the subclassed model .* Do this instead"):
        clone_graph_model(Net(), copy_layer, action="frob", advice="Do this instead.")
