"""Layers QAT rewrites before wrapping (kopt.quantization.splits): a TimeDistributed head, InceptionResNetV2's scaled adds."""

import keras
import numpy as np

import tflite_export
from kopt import clustering
from kopt import pruning
from kopt.quantization import quantize_model
from kopt.quantization import strip_quantization
from kopt.quantization.splits import split_scaled_add
from kopt.quantization.splits import unwrapped_dense

L = keras.layers


def _tagger():
    """Token ids -> Embedding -> Conv1D -> TimeDistributed(Dense): one tag per position."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12,), dtype="int32")
    x = L.Conv1D(16, 3, padding="same", activation="relu")(L.Embedding(50, 8)(inputs))
    return keras.Model(inputs, L.TimeDistributed(L.Dense(5), name="tags")(x))


def _trained_and_verified(qat, inputs, labels, path):
    """Trains ``qat`` 2 epochs, exports it to a fully integer file and verifies the file against it."""
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(inputs, labels, epochs=2, verbose=0)
    tflite_export.convert(qat, path, mode="int8")
    ok, reasons = tflite_export.is_fully_integer(path)
    assert ok, reasons
    return tflite_export.verify(path, qat, (inputs, labels))


def test_a_time_distributed_dense_quantizes_as_the_dense_it_wraps(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 50, (64, 12)).astype("int32")
    tags = np.random.default_rng(1).integers(0, 5, (64, 12))
    model = _tagger()
    qat = quantize_model(model)
    assert isinstance(qat.get_layer("quant_tags").layer, L.Dense)
    checked = _trained_and_verified(qat, tokens, tags, str(tmp_path / "tagger.tflite"))
    assert checked["agreement"] == 1.0 and checked["examples"] == 64
    assert strip_quantization(qat).output_shape == model.output_shape


def test_unwrapped_dense_computes_the_wrapper_and_leaves_other_layers():
    model = _tagger()
    wrapper = model.get_layer("tags")
    dense = unwrapped_dense(wrapper)
    x = np.random.default_rng(2).normal(size=(3, 12, 16)).astype("float32")
    np.testing.assert_allclose(dense(x), wrapper(x), atol=1e-6)
    assert unwrapped_dense(model.layers[1]) is None
    assert unwrapped_dense(L.TimeDistributed(L.Conv1D(2, 1))) is None


def test_a_time_distributed_layer_is_pruned_and_clustered_inside():
    tokens = np.random.default_rng(0).integers(0, 50, (32, 12)).astype("int32")
    tags = np.random.default_rng(1).integers(0, 5, (32, 12))
    pruned = pruning.prune_low_magnitude(_tagger(), pruning.ConstantSparsity(0.5, 0))
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(tokens, tags, epochs=1, verbose=0, callbacks=[pruning.UpdatePruningStep()])
    kernel = pruning.strip_pruning(pruned).get_layer("tags").layer.kernel.numpy()
    assert np.mean(kernel == 0) == 0.5
    clustered = clustering.cluster_weights(_tagger(), number_of_clusters=4)
    clustered.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clustered.fit(tokens, tags, epochs=1, verbose=0)
    kernel = clustering.strip_clustering(clustered).get_layer("tags").layer.kernel.numpy()
    assert len(np.unique(kernel)) <= 4


def _custom_scale_class():
    """Keras' InceptionResNetV2 ``CustomScaleLayer``, which Keras does not export, taken from the model."""
    model = keras.applications.InceptionResNetV2(weights=None, include_top=False, input_shape=(75, 75, 3))
    return type(next(layer for layer in model.layers if type(layer).__name__ == "CustomScaleLayer"))


def _scaled_residual_block(scale_class):
    """Two InceptionResNetV2-style blocks: ``relu(x + scale * conv(x))``, the last with scale 1 and no ReLU."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inputs)
    residual = L.Conv2D(8, 1, name="block1_conv")(L.Conv2D(8, 3, padding="same", activation="relu")(x))
    x = L.Activation("relu", name="block1_ac")(scale_class(0.17, name="block1")([x, residual]))
    residual = L.Conv2D(8, 1, name="block2_conv")(x)
    x = scale_class(1.0, name="block2")([x, residual])
    return keras.Model(inputs, L.Dense(4)(L.GlobalAveragePooling2D()(x)))


def test_inception_resnet_custom_scale_layers_quantize_to_a_fully_integer_file(tmp_path):
    model = _scaled_residual_block(_custom_scale_class())
    images = np.random.default_rng(0).random((64, 8, 8, 3)).astype("float32")
    labels = np.random.default_rng(1).integers(0, 4, 64)
    qat = quantize_model(model)
    # The product is a layer of its own, so its range is learnt; the Add keeps the block's name.
    assert isinstance(qat.get_layer("quant_block1").layer, L.Add)
    assert "quant_block1_scale" in [layer.name for layer in qat.layers]
    checked = _trained_and_verified(qat, images, labels, str(tmp_path / "blocks.tflite"))
    assert checked["agreement"] == 1.0, checked
    path = str(tmp_path / "blocks.keras")
    qat.save(path)
    np.testing.assert_allclose(
        keras.models.load_model(path).predict(images, verbose=0), qat.predict(images, verbose=0), atol=1e-6
    )


def test_split_scaled_add_computes_the_layer_it_replaces():
    layer = _custom_scale_class()(0.17, name="block")
    scale, add = split_scaled_add(layer)
    assert (scale.name, add.name) == ("block_scale", "block")
    rng = np.random.default_rng(0)
    x, r = rng.normal(size=(2, 4, 4, 3)).astype("float32"), rng.normal(size=(2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(add([x, scale(r)]), layer([x, r]), atol=1e-6)


def test_split_scaled_add_leaves_other_layers():
    assert split_scaled_add(L.Add()) is None
    assert split_scaled_add(L.Rescaling(0.5)) is None

    class CustomScaleLayer(L.Layer):  # a user's layer of the same name is not Keras'
        scale = 0.5

    assert split_scaled_add(CustomScaleLayer()) is None
