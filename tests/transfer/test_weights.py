"""transfer_weights: what fits is copied, the overlap of what does not, the rest reported."""

import keras
import numpy as np
import pytest

from kopt.transfer import transfer_weights
from tests.transfer.test_widen import _inputs
from tests.transfer.test_widen import _randomize


def _mlp(hidden=8, inputs=4, head="head", classes=2, name=None):
    return keras.Sequential(
        [keras.Input((inputs,)), keras.layers.Dense(hidden, name="hidden"), keras.layers.Dense(classes, name=head)],
        name=name,
    )


def _cnn(filters=8, kernel=3, functional=True, extra=False):
    layers = [
        keras.layers.Conv2D(filters, kernel, padding="same", name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(),
    ]
    if extra:
        layers.append(keras.layers.Dense(16, name="extra"))
    layers.append(keras.layers.Dense(3, name="head"))
    if not functional:
        return keras.Sequential([keras.Input((6, 6, 2)), *layers])
    x = inputs = keras.Input((6, 6, 2))
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def test_same_architecture_copies_everything_and_the_outputs_match():
    source, target = _randomize(_cnn(functional=True)), _cnn(functional=False)
    report = transfer_weights(source, target)
    assert len(report.copied) == 8 and not report.partial and not report.skipped
    assert report.values_transferred == report.values_total == source.count_params()
    x = _inputs(source)
    np.testing.assert_allclose(target.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-6)


def test_a_wider_target_gets_the_overlap_and_keeps_its_own_values_elsewhere():
    source, target = _randomize(_cnn(filters=4)), _cnn(filters=6)
    before = target.get_layer("conv").kernel.numpy()
    report = transfer_weights(source, target)
    partial = {entry.name: entry for entry in report.partial}
    assert set(partial) == {"conv/kernel", "conv/bias", "bn/gamma", "bn/beta", "bn/moving_mean",
                            "bn/moving_variance", "head/kernel"}  # fmt: skip
    assert partial["conv/kernel"].values == 3 * 3 * 2 * 4 and partial["conv/kernel"].reason.startswith("target[0:3")
    kernel = target.get_layer("conv").kernel.numpy()
    np.testing.assert_array_equal(kernel[..., :4], source.get_layer("conv").kernel.numpy())
    np.testing.assert_array_equal(kernel[..., 4:], before[..., 4:])
    np.testing.assert_array_equal(target.get_layer("head").kernel.numpy()[:4], source.get_layer("head").kernel.numpy())
    assert [entry.name for entry in report.copied] == ["head/bias"]


def test_a_smaller_convolution_window_lands_on_the_centre_taps():
    source, target = _randomize(_cnn(kernel=3)), _cnn(kernel=5)
    transfer_weights(source, target)
    np.testing.assert_array_equal(target.get_layer("conv").kernel.numpy()[1:4, 1:4], source.get_layer("conv").kernel)


def test_skipped_weights_say_why():
    source = _randomize(_cnn(extra=False))
    target = _cnn(extra=True)
    report = transfer_weights(source, target)
    reasons = report.skipped_layers()
    assert reasons == {"extra": "no layer named 'extra' in the source"}
    assert report.partial[0].name == "head/kernel"  # 8 -> 16 inputs: the first 8 rows
    no_bias = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, use_bias=False, name="hidden")])
    report = transfer_weights(no_bias, _mlp())
    assert report.skipped_layers()["hidden"] == "source layer 'hidden' has no weight 'bias'"
    conv = keras.Sequential([keras.Input((4, 1)), keras.layers.Conv1D(2, 1, name="hidden")])
    report = transfer_weights(conv, _mlp())
    assert report.skipped_layers()["hidden"] == "source layer 'hidden' is a Conv1D, not a Dense"


def test_a_rank_mismatch_and_partial_false_skip():
    def norm(axis):
        return keras.Sequential([keras.Input((3, 4)), keras.layers.LayerNormalization(axis=axis, name="norm")])

    report = transfer_weights(norm([1, 2]), norm(-1))
    assert report.skipped_layers() == {"norm": "ranks differ: source (3, 4), target (4,)"}
    report = transfer_weights(_randomize(_mlp(hidden=8)), _mlp(hidden=9), partial=False)
    assert (
        not report.partial and report.skipped[0].reason == "shapes differ: source (4, 8), target (4, 9) (partial=False)"
    )
    assert report.unused_source_layers == () and [entry.name for entry in report.copied] == ["head/bias"]


def test_strict_names_layer_weight_and_shapes_and_changes_nothing():
    source, target = _randomize(_mlp(hidden=8)), _mlp(hidden=9)
    before = [value.copy() for value in target.get_weights()]
    with pytest.raises(ValueError, match=r"weight 'kernel' of layer 'hidden' \(shape \(4, 9\)\) would be partly "
                                         r"copied: source shape \(4, 8\).*2 more.*Received: strict=True"):  # fmt: skip
        transfer_weights(source, target, strict=True)
    for old, now in zip(before, target.get_weights()):
        np.testing.assert_array_equal(old, now)
    assert len(transfer_weights(source, _mlp(hidden=8), strict=True).copied) == 4


def test_match_by_order_pairs_automatically_named_layers():
    source = _randomize(keras.Sequential([keras.Input((3,)), keras.layers.Dense(5), keras.layers.Dense(2)]))
    target = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5), keras.layers.Dense(2), keras.layers.Dense(1)])
    assert not transfer_weights(source, target).transferred_any  # dense_3 is not dense_1
    report = transfer_weights(source, target, match="order")
    assert len(report.copied) == 4 and report.skipped_layers() == {
        target.layers[2].name: "the source has only 2 layers with weights"
    }
    np.testing.assert_array_equal(target.layers[1].kernel.numpy(), source.layers[1].kernel.numpy())


def test_nested_models_are_entered_and_repeated_names_are_refused():
    block = keras.Sequential([keras.layers.Dense(8, name="hidden")], name="block")
    inputs = keras.Input((4,))
    source = _randomize(keras.Model(inputs, keras.layers.Dense(2, name="head")(block(inputs))))
    target = _mlp()
    assert len(transfer_weights(source, target).copied) == 4
    np.testing.assert_array_equal(target.get_layer("hidden").kernel.numpy(), block.get_layer("hidden").kernel)
    twice = keras.Sequential([keras.Input((4,)), keras.Sequential([keras.layers.Dense(4, name="hidden")]),
                              keras.layers.Dense(2, name="hidden")])  # fmt: skip
    with pytest.raises(ValueError, match="Layer name 'hidden' occurs twice in the source model.*match='order'"):
        transfer_weights(twice, target)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="match must be one of.*Received: match='position'"):
        transfer_weights(_mlp(), _mlp(), match="position")
    with pytest.raises(ValueError, match="target must be a keras.Model. Received: target of type str"):
        transfer_weights(_mlp(), "model.keras")
    with pytest.raises(ValueError, match="target model 'unbuilt' is not built"):
        transfer_weights(_mlp(), keras.Sequential([keras.layers.Dense(2)], name="unbuilt"))


def test_a_source_loaded_from_a_keras_file_transfers(tmp_path):
    source = _randomize(_cnn())
    path = str(tmp_path / "source.keras")
    source.save(path)
    target = _cnn(extra=True)
    report = transfer_weights(keras.models.load_model(path), target)
    assert len(report.copied) == 7 and len(report.partial) == 1 and len(report.skipped) == 2
    np.testing.assert_array_equal(
        target.get_layer("bn").moving_variance.numpy(), source.get_layer("bn").moving_variance
    )


def test_mobilenet_v2_alpha_035_into_alpha_05():
    keras.utils.set_random_seed(0)
    source = keras.applications.MobileNetV2((32, 32, 3), alpha=0.35, weights=None, classes=10)
    target = keras.applications.MobileNetV2((32, 32, 3), alpha=0.5, weights=None, classes=10)
    report = transfer_weights(source, target)
    assert not report.skipped and not report.unused_source_layers
    assert len(report.copied) + len(report.partial) == len(target.weights)
    assert report.copied and report.partial
    assert 0.2 < report.values_transferred / report.values_total < 0.9
    wide, narrow = target.get_layer("block_16_project").kernel.numpy(), source.get_layer("block_16_project").kernel
    np.testing.assert_array_equal(wide[..., : narrow.shape[-2], : narrow.shape[-1]], narrow)
    back = transfer_weights(target, keras.applications.MobileNetV2((32, 32, 3), alpha=0.35, weights=None, classes=10))
    assert len(back.copied) + len(back.partial) == len(source.weights)
