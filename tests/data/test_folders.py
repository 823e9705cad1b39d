"""Image folders as datasets (``dir:PATH``), and ``image_size`` on every source."""

import doctest
import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from kopt import ConfigError
from kopt.data import folders
from kopt.data import load_dataset
from kopt.data.folders import folder_arrays
from kopt.data.folders import image_size_of

CIFAR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cifar10-15k.npz")


def _write(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.asarray(pixels, np.uint8)
    if path.endswith(".png"):
        data = tf.io.encode_png(pixels)
    elif path.endswith(".gif"):
        raise ValueError("write GIFs with _gif")
    else:
        data = tf.io.encode_jpeg(pixels, quality=95)
    tf.io.write_file(path, data)


def _cifar(count):
    """``count`` real CIFAR-10 training images and their labels."""
    with np.load(CIFAR) as data:
        return data["x_train"][:count], data["y_train"][:count].reshape(-1)


def _flat_folder(root, counts, shape=(6, 5, 3)):
    """Class folders ``c0``, ``c1``, ... with ``counts`` PNGs each; pixel value = class * 40 + index."""
    for label, count in enumerate(counts):
        for index in range(count):
            _write(os.path.join(root, f"c{label}", f"{index:03d}.png"), np.full(shape, label * 40 + index))


def test_a_folder_of_class_folders_holds_out_a_fifth_of_each_class_the_same_every_time(tmp_path):
    _flat_folder(tmp_path / "photos", [10, 6, 2])
    first = folder_arrays("dir:x", str(tmp_path / "photos"))
    x_train, y_train, x_test, y_test, source, classes, levels = first
    assert classes == ("c0", "c1", "c2") and x_train.dtype == np.uint8 and x_train.shape[1:] == (6, 5, 3)
    assert levels == 255
    assert np.bincount(y_test).tolist() == [2, 1, 1] and np.bincount(y_train).tolist() == [8, 5, 1]
    # Every image is there once, with its own label (its pixel value names its class).
    values = np.concatenate([x_train[:, 0, 0, 0], x_test[:, 0, 0, 0]]) // 40
    assert values.tolist() == np.concatenate([y_train, y_test]).tolist() and len(set(x_test[:, 0, 0, 0])) == 4
    assert "20% of each class held out" in source and "3 classes, 14 training and 4 test images" in source
    # The split goes by each file's path inside the folder: a copy elsewhere, read with another seed, splits the same.
    shutil.copytree(tmp_path / "photos", tmp_path / "elsewhere" / "copy")
    _, test, _ = load_dataset(f"dir:{tmp_path / 'elsewhere' / 'copy'}", seed=7)
    copied = np.concatenate([x.numpy() for x, _ in test])
    assert np.array_equal(copied, (x_test.astype(np.float32) / 255.0).astype(np.float32))


def test_train_and_test_folders_are_the_splits_and_a_test_class_may_be_missing(tmp_path, caplog):
    for split, counts in (("train", [3, 2, 2]), ("test", [1, 2])):
        _flat_folder(tmp_path / split, counts)
    _flat_folder(tmp_path / "val", [1, 1])
    with caplog.at_level(logging.WARNING):
        x_train, y_train, x_test, y_test, source, classes, _ = folder_arrays("dir:x", str(tmp_path))
    assert classes == ("c0", "c1", "c2") and y_train.tolist() == [0, 0, 0, 1, 1, 2, 2] and y_test.tolist() == [0, 1, 1]
    assert "splits train/ and test/" in source
    assert "val/ is not read" in caplog.text


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"train/a/1.png": 1, "train/b/1.png": 1}, r"has a train/ folder but no test/, val/, validation/"),
        ({"train/a/1.png": 1, "train/b/1.png": 1, "test/z/1.png": 1}, r"test/ has class folders \['z'\] that train/"),
        ({"train/a/1.png": 1, "train/b/readme.txt": 1, "test/a/1.png": 1}, r"class folder train/b/ holds no"),
        ({"a/1.png": 1}, r"needs one subfolder per class \(at least 2\)"),
        ({"a/1.png": 1, "b/1.jpg": "not a jpeg"}, r"b/1.jpg is not a readable image"),
        ({"a/1.png": 1, "b/1.png": 2, "b/2.png": 3, "loose.png": 4, "c/": None}, r"class folder c/ holds no"),
    ],
)
def test_bad_folders_are_refused_naming_what_is_wrong(tmp_path, layout, message):
    for name, content in layout.items():
        path = tmp_path / name
        if content is None:
            path.mkdir(parents=True)
        elif isinstance(content, str):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        else:
            _write(str(path), np.full((4, 4, 3), content))
    with pytest.raises(ConfigError, match=message) as err:
        load_dataset(f"dir:{tmp_path}")
    assert err.value.key == "dataset" and err.value.value == f"dir:{tmp_path}"


def test_a_missing_or_empty_path_is_refused():
    with pytest.raises(ConfigError, match="folder not found"):
        load_dataset("dir:/no/such/folder")
    with pytest.raises(ConfigError, match="give a folder after 'dir:'"):
        load_dataset("dir:")


def test_photos_of_many_sizes_need_an_image_size_and_are_resized_to_it(tmp_path):
    images, labels = _cifar(12)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        side = 32 + 8 * (index % 3)  # 32, 40 and 48 pixels: a folder of photos never agrees on a size
        big = tf.image.resize(image, (side, side), method="nearest").numpy()
        _write(str(tmp_path / f"class{label % 2}" / f"{index}.png"), big)
    with pytest.raises(ConfigError, match=r"images differ in size \(.*32x32.*40x40\); give --image_size=H,W"):
        load_dataset(f"dir:{tmp_path}")
    train, test, info = load_dataset(f"dir:{tmp_path}", image_size=(24, 20), batch_size=4)
    assert info.input_shape == (24, 20, 3) and info.class_names == ("class0", "class1") and info.pixel_levels == 255
    assert "resized to 24x20" in info.source
    x, y = next(iter(train))
    assert x.shape[1:] == (24, 20, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    # The stored 8-bit pixels, divided by 255 as npz pixels are, in the first file's order for the test split.
    x_train, _, x_test, _, _, _, _ = folder_arrays("dir:x", str(tmp_path), (24, 20))
    batches = np.concatenate([x.numpy() for x, _ in test])
    assert np.array_equal(batches, (x_test.astype(np.float32) / 255.0).astype(np.float32))
    # Resizing is bilinear, rounded to 8 bits.
    first = os.path.join(str(tmp_path), "class0", sorted(os.listdir(tmp_path / "class0"))[0])
    decoded = tf.io.decode_png(tf.io.read_file(first))
    expected = np.round(tf.image.resize(decoded, (24, 20), method="bilinear").numpy()).clip(0, 255)
    train_files = folders._split_files("dir:x", str(tmp_path))[0]
    position = [file for file, _ in train_files].index(first)
    assert np.array_equal(x_train[position], expected.astype(np.uint8))


def test_grey_folders_stay_grey_and_any_colour_image_makes_them_rgb(tmp_path):
    grey = tmp_path / "grey"
    for label in range(2):
        _write(str(grey / f"k{label}" / "a.png"), np.full((5, 5, 1), 10 + label))
        _write(str(grey / f"k{label}" / "b.jpg"), np.full((5, 5, 1), 100))
    x_train, *_ = folder_arrays("dir:g", str(grey))
    assert x_train.shape[-1] == 1
    mixed = tmp_path / "mixed"
    _write(str(mixed / "k0" / "grey.png"), np.full((5, 5, 1), 77))
    rgba = np.zeros((5, 5, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = (1, 2, 3), 9  # the alpha channel is dropped
    _write(str(mixed / "k1" / "alpha.png"), rgba)
    x_train, y_train, x_test, y_test, source, _, _ = folder_arrays("dir:m", str(mixed))
    images = {int(label): image for label, image in zip(np.concatenate([y_train, y_test]),
                                                        np.concatenate([x_train, x_test]), strict=True)}  # fmt: skip
    assert "RGB" in source and images[0].shape == (5, 5, 3)
    assert (images[0] == 77).all() and images[1][0, 0].tolist() == [1, 2, 3]


def test_nested_folders_are_read_and_other_files_are_not(tmp_path, caplog):
    _write(str(tmp_path / "a" / "2024" / "x.PNG"), np.full((3, 3, 3), 5))
    _write(str(tmp_path / "a" / "y.png"), np.full((3, 3, 3), 6))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    _write(str(tmp_path / "a" / ".hidden.png"), np.full((3, 3, 3), 7))
    _write(str(tmp_path / "b" / "z.jpeg"), np.full((3, 3, 3), 8))
    _write(str(tmp_path / ".cache" / "w.png"), np.full((3, 3, 3), 9))
    _write(str(tmp_path / "stray.png"), np.full((3, 3, 3), 10))
    with caplog.at_level(logging.WARNING):
        x_train, y_train, x_test, y_test, _, classes, _ = folder_arrays("dir:n", str(tmp_path))
    assert classes == ("a", "b") and len(y_train) + len(y_test) == 3
    assert "1 file(s) directly in" in caplog.text and "(stray.png) belong to no class folder" in caplog.text


def test_a_folder_that_would_not_fit_in_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    _flat_folder(tmp_path, [2, 2])
    monkeypatch.setattr(folders, "_MEMORY_SHARE", 1e-12)
    monkeypatch.setattr(folders, "_decode", lambda *a: pytest.fail("decoded before the memory check"))
    with pytest.raises(ConfigError, match=r"4 images of 512x512 take .* GiB .*give a smaller --image_size"):
        folder_arrays("dir:x", str(tmp_path), (512, 512))


def test_image_size_resizes_npz_images_and_is_refused_for_tokens(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8, 3)).astype(np.uint8)
    np.savez(tmp_path / "i.npz", x_train=images, y_train=np.arange(6) % 2, x_test=images[:2], y_test=[0, 1])
    train, test, info = load_dataset(f"npz:{tmp_path / 'i.npz'}", image_size=16)
    assert info.input_shape == (16, 16, 3) and info.source.endswith("resized to 16x16")
    x, _ = next(iter(test))
    expected = tf.image.resize((images[:2].astype(np.float32) / 255.0).astype(np.float32), (16, 16), method="bilinear")
    np.testing.assert_array_equal(x.numpy(), expected.numpy())
    np.savez(tmp_path / "t.npz", x_train=np.ones((4, 7), int), y_train=[0, 1, 0, 1], x_test=np.ones((2, 7), int),
             y_test=[0, 1])  # fmt: skip
    with pytest.raises(ConfigError, match=r"resizes images, and npz:.*'s examples are \(7,\)") as err:
        load_dataset(f"npz:{tmp_path / 't.npz'}", image_size=(4, 4))
    assert err.value.key == "image_size"


@pytest.mark.parametrize(
    "value, expected",
    [("96,128", (96, 128)), ("64", (64, 64)), (32, (32, 32)), ([24, 40], (24, 40)), (np.int64(5), (5, 5))],
)
def test_image_size_reads_a_pair_or_one_side(value, expected):
    assert image_size_of("image_size", value) == expected


@pytest.mark.parametrize("value", ["0,5", "a,b", "1,2,3", [1.5, 2], True, [True, 3], "", 9000, None, ["32", "32"]])
def test_image_size_refuses_anything_else_naming_the_value(value):
    with pytest.raises(ConfigError, match="must be HEIGHT,WIDTH") as err:
        image_size_of("image_size", value)
    assert err.value.key == "image_size"


def test_num_classes_must_match_the_class_folders(tmp_path):
    _flat_folder(tmp_path, [2, 2])
    with pytest.raises(ConfigError, match=r"has 2 classes: \['c0', 'c1'\]"):
        load_dataset(f"dir:{tmp_path}", num_classes=3)


def test_the_module_example_runs():
    assert doctest.testmod(folders).failed == 0
