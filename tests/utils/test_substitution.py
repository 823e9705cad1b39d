"""kopt.utils.substitution: the wrapper base that runs a layer with substituted weights."""

import keras
import numpy as np

from kopt.utils.substitution import SubstitutingWrapper
from kopt.utils.substitution import symbolic_inputs


class _Doubled(SubstitutingWrapper):
    def call(self, inputs, *args, training=None, **kwargs):
        kernels = {id(v): v.value * 2.0 for v in self.layer.trainable_variables if v.name == "kernel"}
        return self.call_with_values(kernels, inputs, *args, training=training, **kwargs)


def test_the_layer_sees_the_substituted_values_and_its_variables_keep_theirs():
    dense = keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="ones")
    wrapper = _Doubled(dense)
    out = keras.ops.convert_to_numpy(wrapper(np.ones((1, 3), "float32")))
    np.testing.assert_array_equal(out, [[7.0, 7.0]])  # 3 * 2 + 1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(dense.kernel.value), np.ones((3, 2)))


def test_state_the_layer_updates_is_written_back_and_losses_are_kept():
    inputs = keras.Input((4,))
    bn = keras.layers.BatchNormalization(momentum=0.0)
    wrapper = _Doubled(bn)
    dense = _Doubled(keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(1.0)))
    model = keras.Model(inputs, dense(wrapper(inputs)))
    x = np.arange(8, dtype="float32").reshape(2, 4)
    model(x, training=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean.value), x.mean(axis=0), rtol=1e-6)
    assert len(model.losses) == 1


def test_training_reaches_layers_that_take_it_and_is_dropped_for_others():
    dropout = _Doubled(keras.layers.Dropout(0.5, seed=1))
    x = np.ones((1, 100), "float32")
    assert np.any(keras.ops.convert_to_numpy(dropout(x, training=True)) == 0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(dropout(x, training=False)), x)
    dense = _Doubled(keras.layers.Dense(1))  # Dense.call takes no training argument
    assert dense(x, training=True).shape == (1, 1)


def test_multi_input_layers_are_built_by_a_symbolic_call():
    attention = _Doubled(keras.layers.MultiHeadAttention(num_heads=1, key_dim=2))
    query, value = np.ones((1, 3, 4), "float32"), np.ones((1, 5, 4), "float32")
    assert attention(query, value).shape == (1, 3, 4)
    assert attention.compute_output_shape((1, 3, 4), (1, 5, 4)) == (1, 3, 4)


def test_symbolic_inputs_replaces_tensors_only():
    structure = symbolic_inputs({"x": np.zeros((2, 3), "float32"), "flag": True, "k": 4})
    assert isinstance(structure["x"], keras.KerasTensor) and structure["x"].shape == (2, 3)
    assert structure["flag"] is True and structure["k"] == 4
