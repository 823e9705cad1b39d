"""A binary classifier that ends in one sigmoid score and scales its own pixels, through a whole run."""

import numpy as np
import pytest

import tflite_export
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import run


def _bright_or_dark(path, seed=0):
    """8x8 uint8 images: class 1 brighter on the left half than the right, class 0 the other way."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in (("train", 512), ("test", 256)):
        labels = rng.integers(0, 2, size=count).astype("uint8")
        images = rng.integers(0, 120, size=(count, 8, 8)).astype("int64")
        images[labels == 1, :, :4] += 120
        images[labels == 0, :, 4:] += 120
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images.astype("uint8"), labels
    np.savez(path, **arrays)
    return arrays


def _sigmoid_model(path):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.Flatten()(x)
    keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="score")(x), name="binary").save(path)


def test_prune_and_qat_of_a_one_score_model_fed_its_own_pixel_values(tmp_path):
    arrays = _bright_or_dark(tmp_path / "data.npz")
    _sigmoid_model(tmp_path / "binary.keras")
    recipe = Recipe(
        model=str(tmp_path / "binary.keras"),
        dataset=f"npz:{tmp_path / 'data.npz'}",
        epochs=6,
        learning_rate=0.01,
        export_dir=str(tmp_path / "out"),
        techniques=(
            TechniqueSpec("prune", {"target_sparsity": 0.5, "epochs": 2}),
            TechniqueSpec("qat", {"epochs": 1, "preserve": ["sparsity"]}),
        ),
    )
    report = run(recipe)
    assert report["input_pixels"] == {"range": [0, 255], "scaled_by": "scale"}
    for row in ("baseline", "optimized"):
        # Scored by the 0.5 threshold: an argmax over the one column would give the share of class 0.
        assert report[row]["keras_accuracy"] > 0.9 and report[row]["tflite_agreement"] == 1.0, report[row]
    # The files take the 0-255 values the model was built for, as the application will give them.
    raw = arrays["x_test"][..., None].astype("float32")
    scores = tflite_export.predict(report["files"]["optimized_tflite"], raw)
    accuracy = np.mean((scores[:, 0] > 0.5) == arrays["y_test"])
    assert accuracy == pytest.approx(report["optimized"]["tflite_accuracy"])
