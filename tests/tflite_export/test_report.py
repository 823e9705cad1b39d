"""compare / format_comparison / write_comparison on two real files of one model."""

import json

import keras
import numpy as np
import pytest

import tflite_export


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("compare")
    rng = np.random.default_rng(0)
    images = rng.normal(size=(300, 6, 6, 1)).astype("float32")
    labels = (images.mean(axis=(1, 2, 3)) > 0).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, epochs=5, verbose=0)
    float_path = tflite_export.convert(model, workdir / "f.tflite")
    int8_path = tflite_export.convert(model, workdir / "q.tflite", mode="int8", representative_dataset=images[:100])
    return model, (images, labels), float_path, int8_path, workdir


def test_compare_measures_both_files(files):
    model, data, float_path, int8_path, _ = files
    result = tflite_export.compare(float_path, int8_path, model, data, runs=3, warmup=1)
    assert result["float32"]["fully_integer"] is False and result["optimized"]["fully_integer"] is True
    assert result["float32"]["agreement"] == 1.0
    assert result["size_ratio"] == pytest.approx(result["optimized"]["bytes"] / result["float32"]["bytes"])
    assert result["optimized"]["latency"]["xnnpack"]["runs"] == 3
    assert result["latency_ratio"] > 0
    assert "CONV_2D" in result["optimized"]["op_counts"]


def test_write_comparison_writes_json_and_png(files):
    model, data, float_path, int8_path, workdir = files
    result = tflite_export.compare(float_path, int8_path, model, data, runs=2, warmup=0)
    json_path, png_path = tflite_export.write_comparison(result, str(workdir / "cmp.json"))
    assert json.loads(open(json_path).read())["size_ratio"] == pytest.approx(result["size_ratio"])
    assert open(png_path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    table = tflite_export.format_comparison(result)
    assert table.splitlines()[2].startswith("float32") and "yes" in table.splitlines()[3]
