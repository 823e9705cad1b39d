"""Which models scale 0-255 pixels themselves, so that kopt-optimize feeds them pixel values."""

import keras
import numpy as np
import pytest

from kopt.models import pixel_scaling_layer
from kopt.models import tiny_cnn
from kopt.models import with_pixel_scaling

L = keras.layers
A = keras.applications


@pytest.mark.parametrize(
    "constructor, kind",
    [(A.EfficientNetB0, "Rescaling"), (A.MobileNetV3Small, "Rescaling"), (A.ConvNeXtTiny, "Normalization")],
)
def test_applications_with_their_own_preprocessing_are_found(constructor, kind):
    model = constructor(input_shape=(32, 32, 3), weights=None, classes=10)
    assert type(pixel_scaling_layer(model)).__name__ == kind


def test_applications_without_preprocessing_are_not():
    assert pixel_scaling_layer(A.MobileNetV2(input_shape=(32, 32, 3), weights=None, classes=10, alpha=0.35)) is None


@pytest.mark.parametrize(
    "module, operation",
    [("mobilenet_v2", "TrueDivide"), ("densenet", "TrueDivide"), ("resnet50", "Add"), ("vgg16", "Add")],
)
def test_preprocess_input_inside_the_model_is_found_as_its_operation(module, operation):
    """Keras' transfer-learning layout: ``preprocess_input`` on the input is keras.ops nodes, not layers."""
    inputs = keras.Input((16, 16, 3))
    x = getattr(A, module).preprocess_input(inputs)  # "tf", "torch", "caffe" (channels reversed, then the mean)
    model = keras.Model(inputs, L.Dense(2)(L.Flatten()(L.Conv2D(4, 3)(x))))
    assert type(pixel_scaling_layer(model)).__name__ == operation  # it raised "No such layer: true_divide" before


@pytest.mark.parametrize("scale", [lambda x: x / 2.0, lambda x: x * 0.5, lambda x: x - 0.5, lambda x: keras.ops.abs(x)])
def test_operations_that_do_not_take_pixels_to_a_unit_range_are_not_scaling(scale):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, L.Dense(2)(L.Flatten()(scale(inputs))))
    assert pixel_scaling_layer(model) is None


def test_the_tutorial_layout_is_found_through_an_augmentation_block():
    augment = keras.Sequential([L.RandomFlip("horizontal"), L.RandomRotation(0.1)], name="augment")
    inputs = keras.Input((16, 16, 3))
    x = L.Rescaling(1.0 / 255, name="scale")(augment(inputs))
    model = keras.Model(inputs, L.Dense(1)(L.Flatten()(L.Conv2D(4, 3)(x))))
    assert pixel_scaling_layer(model).name == "scale"


def test_a_backbone_behind_a_resize_is_entered():
    backbone = A.EfficientNetB0(input_shape=(64, 64, 3), weights=None, include_top=False, pooling="avg")
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, L.Dense(2)(backbone(L.Resizing(64, 64)(inputs))))
    assert isinstance(pixel_scaling_layer(model), L.Rescaling)


@pytest.mark.parametrize(
    "first",
    [
        lambda: L.Rescaling(2.0),  # not a pixel scale
        lambda: L.Conv2D(4, 3),
        lambda: _unit_normalization(),  # fitted on [0, 1] images
    ],
)
def test_models_that_read_the_values_as_given(first):
    model = keras.Sequential([keras.Input((8, 8, 3)), first(), L.Flatten(), L.Dense(2)])
    assert pixel_scaling_layer(model) is None


def test_a_branching_or_multi_input_start_decides_nothing():
    inputs = keras.Input((8, 8, 3))
    a, b = L.Rescaling(1 / 255)(inputs), L.Conv2D(3, 1)(inputs)
    assert pixel_scaling_layer(keras.Model(inputs, L.Dense(2)(L.Flatten()(L.Add()([a, b]))))) is None
    first, second = keras.Input((4,)), keras.Input((4,))
    joined = L.Concatenate()([L.Rescaling(1 / 255)(first), second])
    assert pixel_scaling_layer(keras.Model([first, second], L.Dense(2)(joined))) is None


def _unit_normalization():
    layer = L.Normalization()
    layer.adapt(np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32"))
    return layer


def test_with_pixel_scaling_computes_the_model_on_scaled_pixels_and_leaves_it_alone():
    model = tiny_cnn((8, 8, 3), 4)
    scaled = with_pixel_scaling(model, 255)
    assert scaled.name == "tiny_cnn" and pixel_scaling_layer(scaled).name == "pixel_scaling"
    assert not any(isinstance(layer, keras.Model) for layer in scaled.layers)  # flat, as later stages need
    assert scaled.count_params() == model.count_params() and pixel_scaling_layer(model) is None
    images = np.random.default_rng(0).random((3, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(scaled(images * 255), model(images), atol=1e-5)


@pytest.mark.parametrize(
    "make, levels, match",
    [
        (lambda: tiny_cnn((8, 8, 3), 4), 0, "levels=0"),
        (lambda: tiny_cnn((8, 8, 3), 4), True, "levels=True"),
        (lambda: tiny_cnn((8, 8, 3), 4), "255", "levels='255'"),
        (lambda: with_pixel_scaling(tiny_cnn((8, 8, 3), 4), 255), 255, "already scales its pixels"),
        (
            lambda: keras.Sequential([keras.Input((4,)), L.Dense(2, name="pixel_scaling")], name="named"),
            255,
            "already has a layer named 'pixel_scaling'",
        ),
    ],
)
def test_with_pixel_scaling_refuses_what_it_cannot_scale(make, levels, match):
    with pytest.raises(ValueError, match=match):
        with_pixel_scaling(make(), levels)


def test_the_module_examples_run():
    import doctest

    from kopt.models import pixels

    assert doctest.testmod(pixels).failed == 0
