"""kopt.quantization.api: quantize_model, annotation, quantize_apply and their errors."""

import os

import keras
import numpy as np
import pytest

from kopt.quantization import QuantizeConfig
from kopt.quantization import quantize_annotate_layer
from kopt.quantization import quantize_annotate_model
from kopt.quantization import quantize_apply
from kopt.quantization import quantize_model
from kopt.quantization import quantize_scope
from kopt.quantization.annotate import QuantizeAnnotate
from kopt.quantization.quantizers import LastValueQuantizer
from kopt.quantization.quantizers import MovingAverageQuantizer
from kopt.quantization.wrapper import QuantizeLayer
from kopt.quantization.wrapper import QuantizeWrapper

L = keras.layers


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _types(model):
    return [type(layer).__name__ for layer in model.layers]


def _cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            L.Conv2D(4, 3, use_bias=False, name="conv"),
            L.BatchNormalization(name="bn"),
            L.ReLU(name="relu"),
            L.MaxPooling2D(name="pool"),
            L.Flatten(name="flatten"),
            L.Dense(3, name="logits"),
        ],
        name="cnn",
    )


def test_quantize_model_on_a_sequential_model():
    model = _cnn()
    model.compile("adam", "mse")
    qat = quantize_model(model)
    assert [(type(layer).__name__, layer.name) for layer in qat.layers] == [
        ("InputLayer", "image"),
        ("QuantizeLayer", "quantize_image"),
        ("QuantizeWrapper", "quant_conv"),
        ("Identity", "bn"),  # folded into the convolution
        ("QuantizeWrapper", "quant_relu"),
        ("MaxPooling2D", "pool"),
        ("Flatten", "flatten"),
        ("QuantizeWrapper", "quant_logits"),
    ]
    assert qat.name == "cnn" and qat.compiled
    conv = qat.get_layer("quant_conv")
    assert conv.layer.name == "conv" and conv.layer.use_bias  # the folded bias
    # The ReLU is fused into the convolution: only the ReLU's output has a range.
    assert conv.quantize_config.activation_attrs == []
    assert qat.get_layer("quant_relu").quantize_config.quantize_output


def test_quantize_model_on_a_functional_model_with_two_inputs():
    left, right = keras.Input((4,), name="left"), keras.Input((4,), name="right")
    x = L.Concatenate(name="concat")([L.Dense(3, name="a")(left), L.Dense(3, name="b")(right)])
    model = keras.Model([left, right], L.Dense(2, activation="softmax", name="out")(x), name="two")
    qat = quantize_model(model)
    assert sorted(layer.name for layer in qat.layers if isinstance(layer, QuantizeLayer)) == [
        "quantize_left",
        "quantize_right",
    ]
    assert [layer.name for layer in qat.layers if isinstance(layer, keras.layers.InputLayer)] == ["left", "right"]
    x_left, x_right = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    qat([x_left, x_right], training=True)  # learn ranges
    np.testing.assert_allclose(_numpy(qat([x_left, x_right])), _numpy(model([x_left, x_right])), atol=0.02)


def test_weights_are_copied_not_shared():
    model = _cnn()
    qat = quantize_model(model)
    original_ids = {id(v) for v in model.variables}
    assert not original_ids & {id(v) for v in qat.variables}
    assert not {id(layer) for layer in model.layers} & {id(layer) for layer in qat.layers}
    assert not {id(layer) for layer in model.layers} & {
        id(layer.layer) for layer in qat.layers if isinstance(layer, QuantizeWrapper)
    }
    np.testing.assert_array_equal(
        _numpy(qat.get_layer("quant_logits").layer.kernel), _numpy(model.get_layer("logits").kernel)
    )
    before = _numpy(model.get_layer("logits").kernel).copy()
    qat.get_layer("quant_logits").layer.kernel.assign(np.zeros_like(before))
    np.testing.assert_array_equal(_numpy(model.get_layer("logits").kernel), before)
    # Each layer of the new model belongs to it only, so .output is its own tensor.
    features = keras.Model(qat.inputs, qat.get_layer("flatten").output)
    assert _types(features)[-1] == "Flatten" and len(features.layers) == 7


def test_quantized_model_stays_close_to_the_float_model():
    model = _cnn()
    rng = np.random.default_rng(1)
    batch_norm = model.get_layer("bn")
    batch_norm.moving_mean.assign(rng.normal(size=4).astype("float32"))
    batch_norm.moving_variance.assign(rng.uniform(0.5, 2.0, 4).astype("float32"))
    x = rng.random((32, 8, 8, 1)).astype("float32")
    qat = quantize_model(model)
    qat(x, training=True)  # learn ranges from this batch
    expected = _numpy(model(x))
    actual = _numpy(qat(x, training=False))
    assert np.abs(actual - expected).max() < 0.05 * np.abs(expected).max()


def test_annotating_some_layers_inserts_quantize_layers_where_float_enters():
    inputs = keras.Input((6,), name="features")
    x = L.Dense(5, name="float_dense")(inputs)
    x = quantize_annotate_layer(L.Dense(4, activation="relu", name="q1"))(x)
    x = quantize_annotate_layer(L.Dropout(0.1, name="drop"))(x)
    x = quantize_annotate_layer(L.Dense(3, name="q2"))(x)
    x = L.Dense(2, name="float_out")(x)
    qat = quantize_apply(keras.Model(inputs, x))
    assert [(type(layer).__name__, layer.name) for layer in qat.layers] == [
        ("InputLayer", "features"),
        ("Dense", "float_dense"),
        ("QuantizeLayer", "quantize_float_dense"),
        ("QuantizeWrapper", "quant_q1"),
        ("Dropout", "drop"),
        ("QuantizeWrapper", "quant_q2"),
        ("Dense", "float_out"),
    ]
    # Dropout moves int8 data: no second QuantizeLayer before q2.
    assert sum(isinstance(layer, QuantizeLayer) for layer in qat.layers) == 1


def test_an_unannotated_passthrough_breaks_the_quantized_chain():
    inputs = keras.Input((6,))
    x = quantize_annotate_layer(L.Dense(4, name="q1"))(inputs)
    x = L.Dropout(0.1, name="drop")(x)
    x = quantize_annotate_layer(L.Dense(3, name="q2"))(x)
    qat = quantize_apply(keras.Model(inputs, x))
    assert sum(isinstance(layer, QuantizeLayer) for layer in qat.layers) == 2


def test_batch_norm_that_cannot_be_folded_is_quantized_on_its_own():
    inputs = keras.Input((8, 8, 2))
    x = L.Add(name="add")([L.Conv2D(2, 3, padding="same", name="conv")(inputs), inputs])
    x = L.BatchNormalization(name="bn")(x)
    qat = quantize_model(keras.Model(inputs, x))
    wrapper = qat.get_layer("quant_bn")
    assert isinstance(wrapper, QuantizeWrapper)
    # Run as one int8 1x1 depthwise convolution (per-channel scale and offset), not two float ops.
    assert isinstance(wrapper.layer, L.DepthwiseConv2D) and wrapper.layer.name == "bn"
    assert wrapper.quantize_config.weight_attrs == ["kernel"] and wrapper.quantize_config.activation_attrs


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = L.Dense(2)

    def call(self, inputs):
        return self.dense(inputs)


def test_subclassed_models_are_rejected():
    model = _Subclassed()
    model(np.ones((1, 3), "float32"))
    with pytest.raises(ValueError, match="subclassed model"):
        quantize_model(model)
    with pytest.raises(ValueError, match="subclassed model"):
        quantize_apply(model)


def test_nested_models_are_quantized_as_one_flat_graph(tmp_path):
    import tflite_export

    # ConvNeXt's shape: a Sequential stem (conv + normalization) and a nested functional block.
    stem = keras.Sequential(
        [keras.Input((8, 8, 3)), L.Conv2D(4, 2, strides=2, name="stem_conv"), L.BatchNormalization(name="stem_bn")],
        name="stem",
    )
    block_in = keras.Input((4, 4, 4))
    block = keras.Model(block_in, L.Add(name="block_add")([L.Conv2D(4, 1, name="block_conv")(block_in), block_in]),
                        name="block")  # fmt: skip
    inputs = keras.Input((8, 8, 3))
    x = L.GlobalAveragePooling2D(name="pool")(block(stem(inputs)))
    model = keras.Model(inputs, L.Dense(2, name="head")(x))
    images = np.random.default_rng(0).normal(size=(32, 8, 8, 3)).astype("float32")
    qat = quantize_model(model)
    assert not any(isinstance(layer, keras.Model) for layer in qat.layers)
    inner = {layer.layer.name for layer in qat.layers if isinstance(layer, QuantizeWrapper)}
    assert {"stem_conv", "block_conv", "block_add", "head"} <= inner
    assert "stem_bn" not in inner  # folded into stem_conv, across the old model boundary
    qat(images, training=True)
    path = tflite_export.convert(qat, str(tmp_path / "nested.tflite"), mode="int8")
    integer, reasons = tflite_export.is_fully_integer(tflite_export.inspect(path))
    assert integer, reasons
    np.testing.assert_allclose(tflite_export.predict(path, images), qat.predict(images, verbose=0), atol=0.05)


def test_a_model_without_annotations_is_rejected():
    model = _cnn()
    with pytest.raises(ValueError, match="found no annotated layer in model 'cnn'"):
        quantize_apply(model)


def test_non_models_are_rejected():
    with pytest.raises(ValueError, match="quantize_model expects a keras.Model"):
        quantize_model(L.Dense(2))


@keras.saving.register_keras_serializable(package="kopt_tests")
class ScaledDense(keras.layers.Layer):
    """A custom layer: ``x @ kernel * 2``."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel")

    def call(self, inputs):
        return keras.ops.matmul(inputs, self.kernel) * 2.0

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="kopt_tests")
class ScaledDenseConfig(QuantizeConfig):
    """Kernel per tensor, symmetric; output with a moving-average range."""

    def __init__(self, ema_decay=0.99):
        self.ema_decay = ema_decay

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, LastValueQuantizer(symmetric=True, narrow_range=True))]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [MovingAverageQuantizer(ema_decay=self.ema_decay)]

    def get_config(self):
        return {"ema_decay": self.ema_decay}


@pytest.mark.parametrize(
    "make_layer, expected",
    [
        (lambda: L.GroupNormalization(2, name="norm"), "'norm' (GroupNormalization)"),
        (lambda: ScaledDense(3, name="scaled"), "'scaled' (ScaledDense)"),
    ],
)
def test_unsupported_layers_are_named_with_the_fix(make_layer, expected):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, L.Dense(2)(make_layer()(inputs)))
    with pytest.raises(ValueError) as error:
        quantize_model(model)
    assert expected in str(error.value) and "QuantizeConfig" in str(error.value)


def test_several_unsupported_layers_are_reported_at_once():
    inputs = keras.Input((4,))
    x = L.GroupNormalization(2, name="norm")(L.UnitNormalization(name="unit")(inputs))
    with pytest.raises(ValueError, match="'unit' .*'norm'|'norm' .*'unit'"):
        quantize_model(keras.Model(inputs, x))


def test_a_custom_layer_with_its_config_trains_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(2)
    inputs = keras.Input((4,), name="features")
    x = quantize_annotate_layer(ScaledDense(3, name="scaled"), quantize_config=ScaledDenseConfig(0.9))(inputs)
    x = quantize_annotate_layer(L.Dense(2, name="out"))(x)
    qat = quantize_apply(keras.Model(inputs, x))
    wrapper = qat.get_layer("quant_scaled")
    assert isinstance(wrapper, QuantizeWrapper) and isinstance(wrapper.quantize_config, ScaledDenseConfig)
    assert sorted(w.name for w in wrapper.non_trainable_weights) == [
        "kernel_max",
        "kernel_min",
        "output_0_max",
        "output_0_min",
    ]
    qat.compile(keras.optimizers.SGD(0.1), "mse")
    rng = np.random.default_rng(2)
    x_train, y_train = rng.normal(size=(64, 4)).astype("float32"), rng.normal(size=(64, 2)).astype("float32")
    before = _numpy(wrapper.layer.kernel).copy()
    qat.fit(x_train, y_train, batch_size=16, epochs=1, verbose=0)
    assert not np.array_equal(before, _numpy(wrapper.layer.kernel))
    kernel = wrapper.quantized_weights()[0]
    assert len(np.unique(kernel)) <= 255
    path = os.path.join(tmp_path, "custom.keras")
    qat.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_layer("quant_scaled").quantize_config.ema_decay == 0.9
    np.testing.assert_array_equal(_numpy(loaded(x_train)), _numpy(qat(x_train)))
    for a, b in zip(qat.weights, loaded.weights):
        np.testing.assert_array_equal(_numpy(a), _numpy(b))


def test_quantize_scope_loads_models_as_tfmot_code_does(tmp_path):
    path = os.path.join(tmp_path, "qat.keras")
    quantize_model(_cnn()).save(path)
    with quantize_scope():
        assert isinstance(keras.models.load_model(path).layers[1], QuantizeLayer)
    with quantize_scope({"ScaledDense": ScaledDense}):
        pass


def test_quantize_annotate_model_keeps_existing_annotations():
    inputs = keras.Input((4,))
    x = quantize_annotate_layer(ScaledDense(3, name="scaled"), quantize_config=ScaledDenseConfig())(inputs)
    annotated = quantize_annotate_model(keras.Model(inputs, L.Dense(2, name="out")(x)))
    assert _types(annotated) == ["InputLayer", "QuantizeAnnotate", "QuantizeAnnotate"]
    assert isinstance(annotated.layers[1].quantize_config, ScaledDenseConfig)
    assert annotated.layers[2].quantize_config is None
    assert all(not isinstance(layer.layer, QuantizeAnnotate) for layer in annotated.layers[1:])


@pytest.fixture
def restore_policy():
    policy = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(policy)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_models_are_rejected_naming_layer_and_policy(restore_policy, policy):
    # Found by trying: such QAT models train, but a float16 graph fails TFLite
    # conversion and bfloat16 cannot hold an 8-bit grid (8 significant bits).
    keras.mixed_precision.set_global_policy(policy)
    with pytest.raises(ValueError, match=f"'conv' \\(dtype policy '{policy}'\\).*set_global_policy\\('float32'\\)"):
        quantize_model(_cnn())


def test_a_float32_model_quantizes_under_a_mixed_global_policy(restore_policy):
    model = _cnn()
    keras.mixed_precision.set_global_policy("mixed_float16")
    qat = quantize_model(model)
    computing = [layer for layer in qat.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert {layer.dtype_policy.name for layer in computing} == {"float32"}
    qat.compile("adam", "mse")
    qat.fit(np.ones((4, 8, 8, 1), "float32"), np.zeros((4, 3), "float32"), verbose=0)
