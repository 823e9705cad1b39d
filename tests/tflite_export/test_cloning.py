import keras
import numpy as np
import pytest

from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_layer


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


def test_inline_nested_models_calls_nested_layers_in_the_outer_graph():
    import numpy as np

    from tflite_export.cloning import inline_nested_models

    L = keras.layers
    stem = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 2, strides=2, name="stem_conv")], name="stem")
    block_in = keras.Input((4, 4, 4))
    residual = L.Add(name="block_add")([L.Conv2D(4, 1, name="block_conv")(block_in), block_in])
    block = keras.Model(block_in, residual, name="block")
    inputs = keras.Input((8, 8, 3), name="image")
    model = keras.Model(inputs, L.Dense(2, name="head")(L.Flatten(name="flat")(block(stem(inputs)))))
    flat = inline_nested_models(model, action="copy", advice="")
    assert [layer.name for layer in flat.layers] == ["image", "stem_conv", "block_conv", "block_add", "flat", "head"]
    assert not {id(v) for v in flat.weights} & {id(v) for v in model.weights}  # copies, not shared
    images = np.random.default_rng(0).normal(size=(3, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(flat.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
