"""tfmot's 11 official tutorials, their flows written as tfmot wrote them, on ``import kopt.compat.tfmot as tfmot``.

Each test follows one guide of tensorflow.org/model_optimization step by step
(pruning with Keras, the pruning comprehensive guide, 2:4 sparsity, QAT, the QAT
comprehensive guide, clustering, the clustering comprehensive guide,
sparsity-preserving clustering, CQAT, PQAT, PCQAT), shortened to a few steps of
training on small data. The only edits are the import line and the Keras 3
changes the README's migration guide lists (``keras`` for ``tf.keras``, ``.keras``
files, ``keras.ops`` in a custom quantizer).
"""

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import kopt.compat.tfmot as tfmot
import tflite_export

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 1.0, size=(256, 28, 28)).astype("float32")
    labels = (images[:, :14].mean(axis=(1, 2)) > images[:, 14:].mean(axis=(1, 2))).astype("int64")
    return images, labels


def _mnist_model():
    # The tutorials' model: reshape, one convolution, a pooling, a dense head.
    return keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(28, 28)),
            keras.layers.Reshape(target_shape=(28, 28, 1)),
            keras.layers.Conv2D(filters=12, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def _compile(model):
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    return model


def _trained(digits):
    images, labels = digits
    model = _compile(_mnist_model())
    model.fit(images, labels, epochs=1, batch_size=64, verbose=0)
    return model


def _sparsity(weights):
    return float(np.mean(np.asarray(weights) == 0))


def test_pruning_with_keras(digits, tmp_path):
    images, labels = digits
    model = _trained(digits)
    prune_low_magnitude = tfmot.sparsity.keras.prune_low_magnitude
    batch_size, epochs = 64, 2
    end_step = np.ceil(len(images) / batch_size).astype(np.int32) * epochs
    pruning_params = {
        "pruning_schedule": tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.50, final_sparsity=0.80, begin_step=0, end_step=end_step
        )
    }
    model_for_pruning = prune_low_magnitude(model, **pruning_params)
    _compile(model_for_pruning)
    callbacks = [
        tfmot.sparsity.keras.UpdatePruningStep(),
        tfmot.sparsity.keras.PruningSummaries(log_dir=str(tmp_path / "logs")),
    ]
    model_for_pruning.fit(images, labels, batch_size=batch_size, epochs=epochs, callbacks=callbacks, verbose=0)
    model_for_export = tfmot.sparsity.keras.strip_pruning(model_for_pruning)
    # 8 steps here against the schedule's default frequency of 100: as in tfmot, only step 0 prunes (to 50%).
    assert _sparsity(model_for_export.layers[-1].kernel.numpy()) == pytest.approx(0.5, abs=0.01)
    converter = tf.lite.TFLiteConverter.from_keras_model(model_for_export)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    assert len(converter.convert()) > 0


def test_pruning_comprehensive_guide(digits, tmp_path):
    input_shape = [20]
    x_train = np.random.randn(1, 20).astype(np.float32)
    y_train = keras.utils.to_categorical(np.random.randn(1), num_classes=20)

    def setup_model():
        return keras.Sequential([keras.layers.Dense(20, input_shape=input_shape), keras.layers.Flatten()])

    base_model = setup_model()
    # Prune the whole model.
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(base_model)
    assert model_for_pruning.count_params() > base_model.count_params()

    # Prune some layers: clone_model with a clone_function.
    def apply_pruning_to_dense(layer):
        if isinstance(layer, keras.layers.Dense):
            return tfmot.sparsity.keras.prune_low_magnitude(layer)
        return layer

    model_for_pruning = keras.models.clone_model(base_model, clone_function=apply_pruning_to_dense)
    assert type(model_for_pruning.layers[0]).__name__ == "PruneLowMagnitude"

    # Functional and Sequential, wrapping a layer as it is built (the Sequential one keeps input_shape).
    i = keras.Input(shape=(20,))
    x = tfmot.sparsity.keras.prune_low_magnitude(keras.layers.Dense(10))(i)
    keras.Model(inputs=i, outputs=keras.layers.Flatten()(x))
    model_for_pruning = keras.Sequential(
        [
            tfmot.sparsity.keras.prune_low_magnitude(keras.layers.Dense(20, input_shape=input_shape)),
            keras.layers.Flatten(),
        ]
    )
    assert model_for_pruning.built and model_for_pruning.count_params() > 0

    # A custom layer says which weights to prune.
    class MyDenseLayer(keras.layers.Dense, tfmot.sparsity.keras.PrunableLayer):
        def get_prunable_weights(self):
            return [self.kernel]

    keras.Sequential([tfmot.sparsity.keras.prune_low_magnitude(MyDenseLayer(20, input_shape=input_shape))])

    # Train with the step callback, then a custom training loop driving it by hand.
    model_for_pruning.compile(loss=keras.losses.categorical_crossentropy, optimizer="adam", metrics=["accuracy"])
    log_dir = str(tmp_path / "logs")
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep(), tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir)]
    model_for_pruning.fit(x_train, y_train, callbacks=callbacks, epochs=2, verbose=0)

    loop_model = tfmot.sparsity.keras.prune_low_magnitude(setup_model())
    loss = keras.losses.categorical_crossentropy
    optimizer = keras.optimizers.Adam()
    step_callback = tfmot.sparsity.keras.UpdatePruningStep()
    step_callback.set_model(loop_model)
    log_callback = tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir)
    log_callback.set_model(loop_model)
    step_callback.on_train_begin()
    for _ in range(2):
        log_callback.on_epoch_begin(epoch=-1)
        step_callback.on_train_batch_begin(batch=-1)
        with tf.GradientTape() as tape:
            logits = loop_model(x_train, training=True)
            loss_value = loss(y_train, logits)
        grads = tape.gradient(loss_value, loop_model.trainable_variables)
        optimizer.apply_gradients(zip(grads, loop_model.trainable_variables))
        step_callback.on_epoch_end(batch=-1)

    # Save and load (Keras 3: a .keras file), then strip.
    keras_file = str(tmp_path / "pruned.keras")
    model_for_pruning.save(keras_file)
    with tfmot.sparsity.keras.prune_scope():
        loaded_model = keras.models.load_model(keras_file)
    stripped = tfmot.sparsity.keras.strip_pruning(loaded_model)
    assert [type(layer).__name__ for layer in stripped.layers] == ["Dense", "Flatten"]

    # Latency-oriented pruning for XNNPACK.
    inputs = keras.Input(shape=(28, 28, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    outputs = keras.layers.Conv2D(10, 1)(keras.layers.GlobalAveragePooling2D(keepdims=True)(x))
    xnnpack_model = tfmot.sparsity.keras.prune_low_magnitude(
        keras.Model(inputs, outputs), pruning_policy=tfmot.sparsity.keras.PruneForLatencyOnXNNPack()
    )
    assert any(type(layer).__name__ == "PruneLowMagnitude" for layer in xnnpack_model.layers)


def test_pruning_with_sparsity_2_by_4(digits):
    images, labels = digits
    pruning_params_2_by_4 = {"sparsity_m_by_n": (2, 4)}
    pruning_params_sparsity_0_5 = {
        "pruning_schedule": tfmot.sparsity.keras.ConstantSparsity(target_sparsity=0.5, begin_step=0, frequency=100)
    }
    model = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(28, 28)),
            keras.layers.Reshape(target_shape=(28, 28, 1)),
            tfmot.sparsity.keras.prune_low_magnitude(
                keras.layers.Conv2D(32, 5, padding="same", activation="relu"), **pruning_params_sparsity_0_5
            ),
            keras.layers.MaxPooling2D((2, 2), padding="same"),
            keras.layers.Flatten(),
            tfmot.sparsity.keras.prune_low_magnitude(
                keras.layers.Dense(64, activation="relu"), **pruning_params_2_by_4
            ),
            keras.layers.Dense(10),
        ]
    )
    _compile(model).fit(images, labels, epochs=1, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()], verbose=0)
    stripped = tfmot.sparsity.keras.strip_pruning(model)
    kernel = stripped.layers[4].kernel.numpy()  # (inputs, units): groups of 4 along the inputs
    groups = kernel.T.reshape(kernel.shape[1], -1, 4)
    assert np.all((groups == 0).sum(axis=-1) >= 2)


def test_quantization_aware_training(digits):
    images, labels = digits
    model = _trained(digits)
    quantize_model = tfmot.quantization.keras.quantize_model
    q_aware_model = _compile(quantize_model(model))
    q_aware_model.fit(images[:128], labels[:128], batch_size=32, epochs=1, validation_split=0.1, verbose=0)
    _, q_aware_accuracy = q_aware_model.evaluate(images, labels, verbose=0)
    assert 0.0 <= q_aware_accuracy <= 1.0
    converter = tf.lite.TFLiteConverter.from_keras_model(q_aware_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    assert len(converter.convert()) > 0


class DefaultDenseQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    # As the comprehensive guide writes it: the kernel and the activation quantized.
    def get_weights_and_quantizers(self, layer):
        return [
            (
                layer.kernel,
                tfmot.quantization.keras.quantizers.LastValueQuantizer(
                    num_bits=8, symmetric=True, narrow_range=False, per_axis=False
                ),
            )
        ]

    def get_activations_and_quantizers(self, layer):
        return [
            (
                layer.activation,
                tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
                    num_bits=8, symmetric=False, narrow_range=False, per_axis=False
                ),
            )
        ]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


class FixedRangeQuantizer(tfmot.quantization.keras.quantizers.Quantizer):
    """The guide's custom quantizer; Keras 3 writes the clip with keras.ops."""

    def build(self, tensor_shape, name, layer):
        range_var = layer.add_weight(
            name=name + "_range", shape=(), initializer=keras.initializers.Constant(6.0), trainable=False
        )
        return {"range_var": range_var}

    def __call__(self, inputs, training, weights, **kwargs):
        return keras.ops.clip(inputs, 0.0, weights["range_var"])

    def get_config(self):
        return {}

    def __eq__(self, other):
        return isinstance(other, FixedRangeQuantizer)

    def __ne__(self, other):
        return not self.__eq__(other)


def test_quantization_comprehensive_guide(tmp_path):
    input_shape = [20]
    x_train = np.random.randn(1, 20).astype(np.float32)
    y_train = keras.utils.to_categorical(np.random.randn(1), num_classes=20)

    def setup_model():
        return keras.Sequential([keras.layers.Dense(20, input_shape=input_shape), keras.layers.Flatten()])

    base_model = setup_model()
    quant_aware_model = tfmot.quantization.keras.quantize_model(base_model)

    # Quantize some layers: annotate by clone_function, then apply.
    def apply_quantization_to_dense(layer):
        if isinstance(layer, keras.layers.Dense):
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        return layer

    annotated_model = keras.models.clone_model(base_model, clone_function=apply_quantization_to_dense)
    quant_aware_model = tfmot.quantization.keras.quantize_apply(annotated_model)
    assert any(type(layer).__name__ == "QuantizeWrapper" for layer in quant_aware_model.layers)

    # Annotate while building, functional and Sequential.
    i = keras.Input(shape=(20,))
    x = tfmot.quantization.keras.quantize_annotate_layer(keras.layers.Dense(10))(i)
    tfmot.quantization.keras.quantize_apply(keras.Model(inputs=i, outputs=keras.layers.Flatten()(x)))
    annotated_model = keras.Sequential(
        [tfmot.quantization.keras.quantize_annotate_layer(keras.layers.Dense(20, input_shape=input_shape)),
         keras.layers.Flatten()]
    )  # fmt: skip
    quant_aware_model = tfmot.quantization.keras.quantize_apply(annotated_model)

    # Save and load.
    quant_aware_model.compile(optimizer="adam", loss="mse")
    quant_aware_model.fit(x_train, y_train, verbose=0)
    keras_file = str(tmp_path / "qat.keras")
    quant_aware_model.save(keras_file)
    with tfmot.quantization.keras.quantize_scope():
        keras.models.load_model(keras_file)

    # A custom layer with a custom QuantizeConfig, annotated and applied in a scope.
    class CustomLayer(keras.layers.Dense):
        pass

    model = tfmot.quantization.keras.quantize_annotate_model(
        keras.Sequential(
            [
                tfmot.quantization.keras.quantize_annotate_layer(
                    CustomLayer(20, input_shape=(20,)), DefaultDenseQuantizeConfig()
                ),
                keras.layers.Flatten(),
            ]
        )  # fmt: skip
    )
    with tfmot.quantization.keras.quantize_scope(
        {"DefaultDenseQuantizeConfig": DefaultDenseQuantizeConfig, "CustomLayer": CustomLayer}
    ):
        quant_aware_model = tfmot.quantization.keras.quantize_apply(model)
    assert quant_aware_model(x_train).shape == (1, 20)

    # Modified quantization: 4-bit weights; no activation quantization.
    class ModifiedDenseQuantizeConfig(DefaultDenseQuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return [
                (
                    layer.kernel,
                    tfmot.quantization.keras.quantizers.LastValueQuantizer(
                        num_bits=4, symmetric=True, narrow_range=False, per_axis=False
                    ),
                )
            ]

    class NoActivationQuantizeConfig(DefaultDenseQuantizeConfig):
        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_activations(self, layer, quantize_activations):
            pass

    class FixedRangeActivationConfig(DefaultDenseQuantizeConfig):
        def get_activations_and_quantizers(self, layer):
            return [(layer.activation, FixedRangeQuantizer())]

    for config in (ModifiedDenseQuantizeConfig(), NoActivationQuantizeConfig(), FixedRangeActivationConfig()):
        annotated = tfmot.quantization.keras.quantize_annotate_model(
            keras.Sequential(
                [
                    tfmot.quantization.keras.quantize_annotate_layer(
                        keras.layers.Dense(20, input_shape=input_shape), config
                    ),
                    keras.layers.Flatten(),
                ]
            )  # fmt: skip
        )
        with tfmot.quantization.keras.quantize_scope({type(config).__name__: type(config)}):
            applied = tfmot.quantization.keras.quantize_apply(annotated)
        assert applied(x_train).shape == (1, 20)


def _clustering_params():
    return {"number_of_clusters": 16, "cluster_centroids_init": tfmot.clustering.keras.CentroidInitialization.LINEAR}


def _values_per_kernel(model):
    return [len(np.unique(w.numpy())) for w in model.weights if w.name == "kernel"]


def test_clustering_example(digits):
    images, labels = digits
    model = _trained(digits)
    cluster_weights = tfmot.clustering.keras.cluster_weights
    clustered_model = cluster_weights(model, **_clustering_params())
    clustered_model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.Adam(learning_rate=1e-5),
        metrics=["accuracy"],
    )
    clustered_model.fit(images, labels, batch_size=64, epochs=1, validation_split=0.1, verbose=0)
    final_model = tfmot.clustering.keras.strip_clustering(clustered_model)
    assert max(_values_per_kernel(final_model)) <= 16


def test_clustering_comprehensive_guide(tmp_path):
    input_shape = [20]
    x_train = np.random.randn(1, 20).astype(np.float32)
    y_train = keras.utils.to_categorical(np.random.randn(1), num_classes=20)
    clustering_params = {**_clustering_params(), "number_of_clusters": 3}

    def setup_model():
        return keras.Sequential([keras.layers.Dense(20, input_shape=input_shape), keras.layers.Flatten()])

    base_model = setup_model()
    tfmot.clustering.keras.cluster_weights(base_model, **clustering_params)

    def apply_clustering_to_dense(layer):
        if isinstance(layer, keras.layers.Dense):
            return tfmot.clustering.keras.cluster_weights(layer, **clustering_params)
        return layer

    clustered_model = keras.models.clone_model(base_model, clone_function=apply_clustering_to_dense)
    clustered_model = keras.Sequential(
        [tfmot.clustering.keras.cluster_weights(keras.layers.Dense(20, input_shape=input_shape), **clustering_params),
         keras.layers.Flatten()]
    )  # fmt: skip
    assert clustered_model.built

    class MyDenseLayer(keras.layers.Dense, tfmot.clustering.keras.ClusterableLayer):
        def get_clusterable_weights(self):
            return [("kernel", self.kernel)]

    keras.Sequential(
        [tfmot.clustering.keras.cluster_weights(MyDenseLayer(20, input_shape=input_shape), **clustering_params)]
    )

    clustered_model.compile(loss=keras.losses.categorical_crossentropy, optimizer="adam", metrics=["accuracy"])
    clustered_model.fit(x_train, y_train, verbose=0)
    keras_file = str(tmp_path / "clustered.keras")
    clustered_model.save(keras_file)
    with tfmot.clustering.keras.cluster_scope():
        loaded_model = keras.models.load_model(keras_file)
    final_model = tfmot.clustering.keras.strip_clustering(loaded_model)
    assert _values_per_kernel(final_model) == [3]

    # Per-channel clustering of a convolution.
    conv_model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
    per_channel = tfmot.clustering.keras.cluster_weights(conv_model, cluster_per_channel=True, **clustering_params)
    kernel = tfmot.clustering.keras.strip_clustering(per_channel).layers[0].kernel.numpy()
    assert all(len(np.unique(kernel[..., c])) <= 3 for c in range(4))


def _pruned_and_stripped(digits, sparsity=0.5):
    images, labels = digits
    model = _trained(digits)
    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=100)
    pruned = _compile(tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule))
    pruned.fit(images, labels, epochs=1, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()], verbose=0)
    return tfmot.sparsity.keras.strip_pruning(pruned)


def test_sparsity_preserving_clustering(digits):
    images, labels = digits
    stripped_pruned_model = _pruned_and_stripped(digits)
    cluster_weights = tfmot.clustering.keras.cluster_weights
    clustering_params = {**_clustering_params(), "number_of_clusters": 8, "preserve_sparsity": True}
    sparsity_clustered_model = cluster_weights(stripped_pruned_model, **clustering_params)
    _compile(sparsity_clustered_model).fit(images, labels, epochs=1, verbose=0)
    stripped = tfmot.clustering.keras.strip_clustering(sparsity_clustered_model)
    kernel = stripped.layers[-1].kernel.numpy()
    assert _sparsity(kernel) >= 0.49 and len(np.unique(kernel)) <= 8


def _quantized_file_keeps(model, tmp_path):
    path = tflite_export.convert(model, str(tmp_path / "collaborative.tflite"), mode="int8")
    assert os.path.getsize(path) > 0
    return path


def test_cluster_preserving_quantization_aware_training(digits, tmp_path):
    images, labels = digits
    clustered_model = tfmot.clustering.keras.cluster_weights(_trained(digits), **_clustering_params())
    _compile(clustered_model).fit(images, labels, epochs=1, verbose=0)
    stripped_clustered_model = tfmot.clustering.keras.strip_clustering(clustered_model)
    qat_model = tfmot.quantization.keras.quantize_annotate_model(stripped_clustered_model)
    cqat_model = tfmot.quantization.keras.quantize_apply(
        qat_model, tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme()
    )
    _compile(cqat_model).fit(images, labels, epochs=1, verbose=0)
    _quantized_file_keeps(cqat_model, tmp_path)


def test_prune_preserving_quantization_aware_training(digits, tmp_path):
    images, labels = digits
    stripped_pruned_model = _pruned_and_stripped(digits)
    quant_aware_annotate_model = tfmot.quantization.keras.quantize_annotate_model(stripped_pruned_model)
    pqat_model = tfmot.quantization.keras.quantize_apply(
        quant_aware_annotate_model, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    )
    _compile(pqat_model).fit(images, labels, epochs=1, verbose=0)
    _quantized_file_keeps(pqat_model, tmp_path)


def test_sparsity_and_cluster_preserving_quantization_aware_training(digits, tmp_path):
    images, labels = digits
    stripped_pruned_model = _pruned_and_stripped(digits)
    clustering_params = {**_clustering_params(), "number_of_clusters": 8, "preserve_sparsity": True}
    sparsity_clustered_model = tfmot.clustering.keras.cluster_weights(stripped_pruned_model, **clustering_params)
    _compile(sparsity_clustered_model).fit(images, labels, epochs=1, verbose=0)
    stripped_clustered_model = tfmot.clustering.keras.strip_clustering(sparsity_clustered_model)
    quant_aware_annotate_model = tfmot.quantization.keras.quantize_annotate_model(stripped_clustered_model)
    pcqat_model = tfmot.quantization.keras.quantize_apply(
        quant_aware_annotate_model,
        tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True),
    )
    _compile(pcqat_model).fit(images, labels, epochs=1, verbose=0)
    _quantized_file_keeps(pcqat_model, tmp_path)


def test_missing_tfmot_names_say_what_to_use():
    with pytest.raises(AttributeError, match="QuantizeRegistry has no kopt counterpart; pass a QuantizeConfig"):
        tfmot.quantization.keras.QuantizeRegistry
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from kopt.compat.tfmot.sparsity import keras as sparsity_keras  # importable, not only an attribute
    assert sparsity_keras.prune_low_magnitude is tfmot.sparsity.keras.prune_low_magnitude
