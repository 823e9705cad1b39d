"""``kopt-optimize --dataset=dir:FOLDER --image_size=H,W``: a folder of real photos, from the command line."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt.pipeline.recipe_file import recipe_from_dict
from tests.cli.in_process import is_refused
from tests.cli.in_process import refused

SCRIPT = os.path.join(os.path.dirname(sys.executable), "kopt-optimize")
CIFAR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cifar10-15k.npz")
NAMES = {0: "airplane", 1: "automobile"}


def _photos(root, count):
    """Real CIFAR-10 airplanes and cars as PNG and JPEG files of 32, 40 and 48 pixels, one folder per class."""
    with np.load(CIFAR) as data:
        images, labels = data["x_train"], data["y_train"].reshape(-1)
    chosen = np.flatnonzero(labels < 2)[:count]
    for index in chosen:
        side = 32 + 8 * (index % 3)
        image = tf.image.resize(images[index], (side, side), method="bicubic")
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        folder = os.path.join(root, NAMES[int(labels[index])])
        os.makedirs(folder, exist_ok=True)
        if index % 2:
            tf.io.write_file(os.path.join(folder, f"{index}.jpg"), tf.io.encode_jpeg(image, quality=95))
        else:
            tf.io.write_file(os.path.join(folder, f"{index}.png"), tf.io.encode_png(image))
    return chosen


@pytest.mark.slow
def test_a_folder_of_photos_of_many_sizes_trains_and_exports(tmp_path):
    chosen = _photos(str(tmp_path / "photos"), 300)
    result = subprocess.run(
        [SCRIPT, "--dataset=dir:photos", "--image_size=32,32", "--epochs=1", "--techniques=none", "--report=r.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    dataset = report["dataset"]
    assert dataset["class_names"] == ["airplane", "automobile"] and dataset["input_shape"] == [32, 32, 3]
    assert dataset["train_examples"] + dataset["test_examples"] == len(chosen)
    assert 0.15 * len(chosen) < dataset["test_examples"] < 0.25 * len(chosen)
    assert "resized to 32x32" in dataset["source"] and report["recipe"]["image_size"] == [32, 32]
    # Scored on the held-out fifth (tests/data/test_folders.py checks that each label is its folder's).
    assert 0 <= report["baseline"]["tflite_accuracy"] <= 1 and report["baseline"]["tflite_agreement"] == 1.0
    # The report is a recipe that reruns the same data.
    assert recipe_from_dict(report["recipe"]).image_size == [32, 32]


def test_photos_of_many_sizes_without_image_size_are_refused_naming_the_flag(tmp_path, monkeypatch):
    _photos(str(tmp_path / "photos"), 6)
    result = refused(["--dataset=dir:photos", "--epochs=1"], tmp_path, monkeypatch)
    is_refused(result, "images differ in size", tmp_path)
    assert "give --image_size=H,W" in result.stderr


def test_a_bad_image_size_is_refused_by_flag(tmp_path, monkeypatch):
    result = refused(["--image_size=0,5"], tmp_path, monkeypatch)
    is_refused(result, "--image_size=0,5: must be HEIGHT,WIDTH", tmp_path)


def test_a_model_of_another_input_size_is_told_which_image_size_fits(tmp_path, monkeypatch):
    _photos(str(tmp_path / "photos"), 6)
    model = keras.Sequential([keras.Input((48, 48, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.save(tmp_path / "m.keras")
    result = refused(["--dataset=dir:photos", "--image_size=32", "--model=m.keras"], tmp_path, monkeypatch)
    is_refused(result, "but the dataset's images are (32, 32, 3); --image_size=48,48 resizes the images", tmp_path)
