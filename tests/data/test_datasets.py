"""kopt.data.load_dataset on the bundled digits and on npz archives."""

import numpy as np
import pytest

from kopt import ConfigError
from kopt.data import load_dataset


def _arrays(ds):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(images), np.concatenate(labels)


def test_digits_is_the_real_uci_set_split_80_20():
    train, test, info = load_dataset("digits", batch_size=100)
    assert info.input_shape == (8, 8, 1)
    assert info.num_classes == 10
    assert (info.train_examples, info.test_examples) == (1437, 360)
    x_train, y_train = _arrays(train)
    x_test, y_test = _arrays(test)
    assert x_train.shape == (1437, 8, 8, 1) and x_test.shape == (360, 8, 8, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    assert 0.0 <= x_train.min() and x_train.max() == 1.0
    # Stratified: every class has 35 or 36 test images.
    assert set(np.bincount(y_test)) <= {35, 36, 37}


def test_digits_test_split_is_fixed_and_train_order_follows_seed():
    _, test_a, _ = load_dataset("digits", seed=1)
    _, test_b, _ = load_dataset("digits", seed=2)
    np.testing.assert_array_equal(_arrays(test_a)[1], _arrays(test_b)[1])
    train_a, _, _ = load_dataset("digits", seed=1)
    train_b, _, _ = load_dataset("digits", seed=2)
    assert not np.array_equal(_arrays(train_a)[1], _arrays(train_b)[1])


def test_batches_have_the_requested_size():
    train, _, _ = load_dataset("digits", batch_size=32)
    sizes = [len(y) for _, y in train]
    assert sizes[:-1] == [32] * (len(sizes) - 1) and sum(sizes) == 1437


def test_npz_reads_the_shared_mnist_subset(mnist_npz):
    train, test, info = load_dataset(f"npz:{mnist_npz}", batch_size=1000)
    assert info.input_shape == (28, 28, 1)
    assert info.num_classes == 10
    assert (info.train_examples, info.test_examples) == (22699, 10000)
    x_test, y_test = _arrays(test)
    assert x_test.dtype == np.float32 and 0.0 <= x_test.min() and x_test.max() <= 1.0
    assert np.bincount(y_test).min() > 800  # the official test set is balanced


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def _good_arrays():
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 255, (20, 6, 6), dtype=np.uint8),
        "y_train": rng.integers(0, 3, 20).astype(np.uint8),
        "x_test": rng.integers(0, 255, (10, 6, 6), dtype=np.uint8),
        "y_test": rng.integers(0, 3, 10).astype(np.uint8),
    }


def test_npz_scales_uint8_and_adds_a_channel(tmp_path):
    arrays = _good_arrays()
    _, test, info = load_dataset(_write_npz(tmp_path / "d.npz", **arrays))
    x_test, y_test = _arrays(test)
    np.testing.assert_allclose(x_test[..., 0], arrays["x_test"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    assert info.input_shape == (6, 6, 1) and info.pixel_levels == 255  # 8-bit pixels, scaled to [0, 1]
    floats = {**arrays, "x_train": arrays["x_train"] / 255.0, "x_test": arrays["x_test"] / 255.0}
    assert load_dataset(_write_npz(tmp_path / "f.npz", **floats))[2].pixel_levels is None  # values as given
    assert load_dataset("digits")[2].pixel_levels == 255


def test_npz_token_ids_stay_integers_and_features_stay_floats(tmp_path):
    # What sequence and text classifiers read: (N, T) token ids for an Embedding, (N, F) float features.
    rng = np.random.default_rng(0)
    tokens = {"x_train": rng.integers(0, 500, (20, 7)), "x_test": rng.integers(0, 500, (10, 7))}
    labels = {"y_train": rng.integers(0, 3, 20), "y_test": rng.integers(0, 3, 10)}
    _, test, info = load_dataset(_write_npz(tmp_path / "t.npz", **tokens, **labels))
    x_test, _ = _arrays(test)
    assert x_test.dtype == np.int32 and info.input_shape == (7,) and info.pixel_levels is None
    np.testing.assert_array_equal(x_test, tokens["x_test"])  # ids, not pixels: never divided by 255
    features = {"x_train": rng.normal(size=(20, 5)), "x_test": rng.normal(size=(10, 5))}
    _, test, info = load_dataset(_write_npz(tmp_path / "f.npz", **features, **labels))
    x_test, _ = _arrays(test)
    assert x_test.dtype == np.float32 and info.input_shape == (5,)
    np.testing.assert_allclose(x_test, features["x_test"], rtol=1e-6)


def test_npz_clips_of_frames_keep_their_time_axis(tmp_path):
    # What a per-frame model (TimeDistributed(Conv2D) -> LSTM) reads: (N, T, H, W, C) clips.
    rng = np.random.default_rng(0)
    clips = {
        "x_train": rng.integers(0, 255, (20, 3, 6, 6, 1), np.uint8),
        "x_test": rng.integers(0, 255, (10, 3, 6, 6, 1), np.uint8),
    }
    labels = {"y_train": rng.integers(0, 3, 20), "y_test": rng.integers(0, 3, 10)}
    _, test, info = load_dataset(_write_npz(tmp_path / "c.npz", **clips, **labels))
    x_test, _ = _arrays(test)
    assert info.input_shape == (3, 6, 6, 1) and info.pixel_levels == 255
    np.testing.assert_allclose(x_test, clips["x_test"] / 255.0, rtol=1e-6)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("y_test"), "lacks arrays \\['y_test'\\]"),
        (lambda a: a.update(y_train=a["y_train"][:5]), "5 labels for 20 images"),
        (lambda a: a.update(x_test=np.zeros((10, 5, 5), np.uint8)), "x_test images are"),
        (lambda a: a.update(y_train=a["y_train"].astype(np.float32)), "integer class indices"),
        (lambda a: a.update(x_train=np.zeros((20,), np.uint8)), "x_train must be"),
        (lambda a: a.update(x_train=np.zeros((20, 2, 3, 6, 6, 1), np.uint8)), "x_train must be"),
        (lambda a: a.update(x_train=np.zeros((20, 6), np.int64), x_test=np.zeros((10, 6), np.float32)), "as int32"),
        (lambda a: a.update(x_train=np.full((20, 6), -1), x_test=np.zeros((10, 6), np.int64)), "from -1 to -1"),
    ],
)
def test_npz_rejects_malformed_archives(tmp_path, change, message):
    arrays = _good_arrays()
    change(arrays)
    with pytest.raises(ConfigError, match=message) as err:
        load_dataset(_write_npz(tmp_path / "d.npz", **arrays))
    assert err.value.key == "dataset"


def test_npz_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_dataset(f"npz:{tmp_path / 'absent.npz'}")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"this is not a zip archive")
    with pytest.raises(ConfigError, match="not a readable .npz archive"):
        load_dataset(f"npz:{corrupt}")
    with pytest.raises(ConfigError, match="give a file after 'npz:'"):
        load_dataset("npz:")


@pytest.mark.parametrize("name", ["imagenet_please", "tfds:", "Digits", ""])
def test_unknown_dataset_names_the_value(name):
    with pytest.raises(ConfigError) as err:
        load_dataset(name)
    assert err.value.key == "dataset"
    assert str(err.value).startswith(f"dataset={name}:")


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_bad_batch_size(batch_size):
    with pytest.raises(ConfigError, match="batch_size"):
        load_dataset("digits", batch_size=batch_size)
